"""`segment IMAGE --model NAME --out LABEL`: write a model's proposal on the image's grid."""
from __future__ import annotations

NAME = "segment"
HELP = "segment an image with a shipped model and write the label on the image's grid"


def add_arguments(parser):
    parser.add_argument("image", help="image file or DICOM folder")
    parser.add_argument("--model", default="unet",
                        help="model name (unet, fpsnet-cam, fpsnet-mixed, ...) or a .pt path")
    parser.add_argument("--out", required=True, help="label file to write (.nii.gz, .nrrd, .mha)")
    parser.add_argument("--prob-out", default=None, help="optional: also write the probability map")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")


def run(args) -> int:
    from app.core.segmentation import segment_volume
    from app.core.volume_io import read_volume, write_label, write_volume

    volume = read_volume(args.image)
    result = segment_volume(volume, args.model, device=args.device)
    path = write_label(result.label.array, volume, args.out)
    if args.prob_out:
        write_volume(volume.with_array(result.prob), args.prob_out)
    voxels = int(result.label.array.sum())
    print(f"{volume.name}: {args.model} labelled {voxels} voxels in {result.seconds:.2f} s -> {path}")
    return 0
