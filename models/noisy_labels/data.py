"""LIDC-style multi-annotator slices: loading, drawing one annotator per slice, augmentation.

The npz layout is the one in ../shared/data/lidc (see its README): `images` (N, H, W) float32,
`annotators` (N, K, H, W) uint8 with padding channels set to 255, `n_annotators` (N,),
`consensus` (N, H, W) uint8 and `slice_ids` (N,) str.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

REQUIRED_KEYS = ("images", "annotators", "n_annotators", "consensus", "slice_ids")


@dataclass(frozen=True)
class AnnotatedSlices:
    images: np.ndarray        # (N, H, W) float32
    annotators: np.ndarray    # (N, K, H, W) uint8, channel k valid iff k < n_annotators[i]
    n_annotators: np.ndarray  # (N,) int
    consensus: np.ndarray     # (N, H, W) uint8 0/1
    slice_ids: np.ndarray     # (N,) str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def annotator_masks(self, i: int) -> np.ndarray:
        """The real annotators' masks of slice i, (n_i, H, W) uint8."""
        return self.annotators[i, : int(self.n_annotators[i])]


def load_slices(path: str | Path) -> AnnotatedSlices:
    """Read one split. Raises FileNotFoundError / ValueError with a sentence naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in REQUIRED_KEYS if k not in data.files]
        if missing:
            raise ValueError(f"{path} lacks the arrays {', '.join(missing)}.")
        arrays = {k: data[k] for k in REQUIRED_KEYS}
    images = arrays["images"].astype(np.float32)
    n = images.shape[0]
    if images.ndim != 3 or arrays["annotators"].shape[:1] != (n,) or arrays["annotators"].ndim != 4:
        raise ValueError(f"{path}: expected images (N, H, W) and annotators (N, K, H, W).")
    n_ann = arrays["n_annotators"].astype(np.int64)
    if np.any(n_ann < 1) or np.any(n_ann > arrays["annotators"].shape[1]):
        raise ValueError(f"{path}: n_annotators must lie between 1 and {arrays['annotators'].shape[1]}.")
    return AnnotatedSlices(images, arrays["annotators"].astype(np.uint8), n_ann,
                           (arrays["consensus"] > 0).astype(np.uint8),
                           arrays["slice_ids"].astype(str))


def draw_annotator_masks(slices: AnnotatedSlices, rng: np.random.Generator) -> np.ndarray:
    """For every slice, the mask of one of its own annotators drawn uniformly: (N, H, W) uint8."""
    picks = (rng.random(len(slices)) * slices.n_annotators).astype(np.int64)
    return slices.annotators[np.arange(len(slices)), picks]


def augment(images: np.ndarray, masks: np.ndarray, rng: np.random.Generator,
            crop: int | None = None):
    """Random crop (square, side `crop`), flips and quarter turns, the same for image and mask.

    Nodules have no "up", so turns and flips are free data. The crop is mainly for speed on a CPU
    (48 of 64 pixels is 0.56 of the work) and still shows the nodule: the crops are centred on it.
    """
    n, h, w = images.shape
    side = min(h, w) if crop is None else min(crop, h, w)
    out_img = np.empty((n, side, side), dtype=images.dtype)
    out_msk = np.empty((n, side, side), dtype=masks.dtype)
    for i in range(n):
        y0 = int(rng.integers(h - side + 1))
        x0 = int(rng.integers(w - side + 1))
        img = images[i, y0:y0 + side, x0:x0 + side]
        msk = masks[i, y0:y0 + side, x0:x0 + side]
        k = int(rng.integers(4))
        img, msk = np.rot90(img, k), np.rot90(msk, k)
        if rng.integers(2):
            img, msk = img[:, ::-1], msk[:, ::-1]
        out_img[i], out_msk[i] = img, msk
    return out_img, out_msk
