"""Training: MSD-layout datasets, balanced slice sampling, augmentation, the three modes."""
