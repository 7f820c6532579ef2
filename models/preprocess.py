"""What the networks see: modality guess, intensity normalisation, in-plane resizing, 2.5D stacks.

numpy only, so the app (display), training and inference share exactly one definition. Every
model's sidecar records the normalisation it was trained with (`normalisation_spec()`), and
inference re-applies that recorded spec rather than whatever the defaults are today.
"""
from __future__ import annotations

import numpy as np

# CT: a fixed soft-tissue window in Hounsfield units. HU are absolute (water 0, fat about -100,
# muscle and tumour 20-80, bone several hundred), so one window means the same tissue in every
# scan; -200..300 keeps fat/muscle/tumour contrast and saturates air and dense bone.
CT_WINDOW = (-200.0, 300.0)
# MR: no absolute scale (it depends on scanner, coil and sequence), so take the volume's own
# range. Clipping at the 0.5 / 99.5 percentiles removes the few very bright voxels (vessels,
# artefacts) that would otherwise squeeze all tissue into a narrow band after scaling.
MR_PERCENTILES = (0.5, 99.5)


def guess_modality(array: np.ndarray) -> str:
    """'CT' when the values look like Hounsfield units, else 'MR'.

    A CT volume stores air near -1000 HU, and air (outside the body, lungs, or padding outside the
    field of view) is practically always present; MR intensities are non-negative magnitudes.
    """
    array = np.asarray(array)
    if array.size == 0:
        return "MR"
    sample = array[:: max(1, array.shape[0] // 16)] if array.ndim >= 3 else array
    low = float(np.percentile(sample, 0.5))
    return "CT" if low < -500 else "MR"


def normalisation_spec() -> dict:
    """The normalisation parameters, as stored in every model sidecar."""
    return {"ct_window": list(CT_WINDOW), "mr_percentiles": list(MR_PERCENTILES), "range": [0, 1]}


def normalise(array: np.ndarray, modality: str, spec: dict | None = None) -> np.ndarray:
    """Map a volume (or slice) to float32 in [0, 1] the way the networks were trained.

    modality "CT" uses the HU window, anything else ("MR", "unknown") the percentile range.
    """
    spec = spec or normalisation_spec()
    array = np.asarray(array, dtype=np.float32)
    if modality == "CT":
        low, high = spec["ct_window"]
    else:
        step = max(1, array.size // 4_000_000)     # percentiles of a subsample: same answer, faster
        low, high = np.percentile(array.reshape(-1)[::step], spec["mr_percentiles"])
    low, high = float(low), float(high)
    if high <= low:
        return np.zeros(array.shape, np.float32)
    out = (array - low) / (high - low)
    return np.clip(out, 0.0, 1.0, out=out)


def _source_coords(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output index: the two input indices and the weight of the second (pixel centres
    aligned, as `align_corners=False` does), clamped at the borders."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def resize_slices(array: np.ndarray, size: tuple[int, int], order: int = 1) -> np.ndarray:
    """Resize every (y, x) slice of a (..., y, x) array to `size` = (height, width).

    order 1: linear (images, probabilities), returns float32. order 0: nearest (labels), keeps the
    dtype. (Our inputs are 55-274 px resized to ~128-160, so a plain 2-tap filter does not alias.)
    """
    array = np.asarray(array)
    h_out, w_out = int(size[0]), int(size[1])
    h_in, w_in = array.shape[-2:]
    if (h_in, w_in) == (h_out, w_out):
        return array.astype(np.float32) if order == 1 else array.copy()
    if order == 0:
        yi = np.minimum(((np.arange(h_out) + 0.5) * h_in / h_out).astype(np.intp), h_in - 1)
        xi = np.minimum(((np.arange(w_out) + 0.5) * w_in / w_out).astype(np.intp), w_in - 1)
        return array[..., yi[:, None], xi[None, :]]
    out = array.astype(np.float32)
    y0, y1, wy = _source_coords(h_in, h_out)
    out = out[..., y0, :] * (1.0 - wy)[:, None] + out[..., y1, :] * wy[:, None]
    x0, x1, wx = _source_coords(w_in, w_out)
    out = out[..., :, x0] * (1.0 - wx) + out[..., :, x1] * wx
    return out.astype(np.float32, copy=False)


def resize_label_slices(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 0/1 label resized by linear interpolation of its indicator then >= 0.5: smoother borders
    than nearest neighbour, and a small object is not dropped by an unlucky sampling grid."""
    return (resize_slices((np.asarray(label) > 0).astype(np.float32), size, order=1) >= 0.5
            ).astype(np.uint8)


def stack_neighbours(volume: np.ndarray, context: int, indices=None) -> np.ndarray:
    """2.5D input: for each slice z, the slices z-context..z+context as channels.

    volume (z, y, x) -> (n, 2*context+1, y, x); slices beyond the ends repeat the end slice.
    indices: which slices to stack (default all).
    """
    volume = np.asarray(volume)
    nz = volume.shape[0]
    indices = np.arange(nz) if indices is None else np.asarray(indices, dtype=np.intp)
    offsets = np.arange(-context, context + 1)
    zz = np.clip(indices[:, None] + offsets[None, :], 0, nz - 1)
    return volume[zz]


def prepare_volume(array: np.ndarray, modality: str, input_size: int, spec: dict | None = None
                   ) -> np.ndarray:
    """Normalise then resize every slice to input_size x input_size: (z, S, S) float32."""
    return resize_slices(normalise(array, modality, spec), (input_size, input_size), order=1)
