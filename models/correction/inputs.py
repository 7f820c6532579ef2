"""Network inputs shared by training and the app engine (so both feed the net the same way)."""
from __future__ import annotations

import cv2     # at import time: a first zoomed click must not pay its ~0.25 s import
import numpy as np
from scipy import ndimage

PATCH = 64                 # patch side in pixels, centred on the newest click
CLICK_SIGMA = 3.0          # px, width of a click's Gaussian in the click channels
CT_WINDOW = (-200.0, 300.0)


def slice_range(image: np.ndarray) -> tuple[float, float]:
    """(low, high) grey values that map to 0 and 1: CT (air below -500) by a soft-tissue window,
    anything else by the slice's 0.5/99.5 percentiles (of every other pixel: same answer, 4x
    faster). Per slice, not per volume, so the engine (one slice) matches training exactly."""
    sample = np.nan_to_num(np.asarray(image, np.float64)[::2, ::2])
    low, high = np.percentile(sample, (0.5, 99.5))
    if float(low) < -500:
        return CT_WINDOW
    return float(low), float(high)


def normalise_slice(image: np.ndarray, value_range=None) -> np.ndarray:
    """float32 in [0, 1] by slice_range (or the given range)."""
    lo, hi = value_range or slice_range(image)
    # float64: any float32 range (even +-3e38) subtracts and divides without overflow
    img = np.nan_to_num(np.asarray(image, np.float64))
    if not hi > lo:
        return np.zeros(img.shape, np.float32)
    return np.clip((img - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def patch_box(shape, centre, size: int = PATCH):
    """(y0, y1, x0, x1) of a size x size box centred on `centre`; may extend past the slice
    (crop pads), so the click is always at the same place in the patch."""
    cy, cx = int(centre[0]), int(centre[1])
    y0, x0 = cy - size // 2, cx - size // 2
    return y0, y0 + size, x0, x0 + size


def crop(array: np.ndarray, box, fill=0.0) -> np.ndarray:
    """The box of a 2D array, padded with `fill` where it leaves the array."""
    y0, y1, x0, x1 = box
    h, w = array.shape
    out = np.full((y1 - y0, x1 - x0), fill, dtype=array.dtype)
    sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if sy1 > sy0 and sx1 > sx0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = array[sy0:sy1, sx0:sx1]
    return out


def click_maps(points_fg, points_bg, box, sigma: float = CLICK_SIGMA) -> np.ndarray:
    """(2, H, W) float32: max of Gaussians at the fg clicks, and at the bg clicks (slice coords)."""
    y0, y1, x0, x1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    out = np.zeros((2, y1 - y0, x1 - x0), np.float32)
    for channel, points in enumerate((points_fg, points_bg)):
        for py, px in points:
            if y0 - 4 * sigma <= py < y1 + 4 * sigma and x0 - 4 * sigma <= px < x1 + 4 * sigma:
                g = np.exp(-((yy - py) ** 2 + (xx - px) ** 2) / (2 * sigma * sigma))
                np.maximum(out[channel], g, out=out[channel])
    return out


def stack_inputs(image_norm: np.ndarray, mask: np.ndarray, fg, bg, box):
    """(image (1,H,W), mask+clicks (3,H,W)) float32 for one patch."""
    img = crop(image_norm.astype(np.float32), box, 0.0)[None]
    msk = crop(mask.astype(np.float32), box, 0.0)[None]
    return img, np.concatenate([msk, click_maps(fg, bg, box)], axis=0)


def zoom_side(mask: np.ndarray, centre, size: int = PATCH, max_zoom: float = 1.0) -> int:
    """Side (slice pixels) of the square the network sees around `centre`: `size` when the
    labelled pieces reaching into the plain patch fit in it, else wide enough to hold them (plus
    8 px), at most max_zoom x size. A click on a large object then sees all of it, not a piece
    whose frame would show as straight edges in the label. Training and the engine both use it."""
    cap = int(round(size * max_zoom))
    if cap <= size:
        return size
    cy, cx = int(centre[0]), int(centre[1])
    h, w = mask.shape
    y0, y1 = max(cy - cap // 2, 0), min(cy + cap // 2, h)
    x0, x1 = max(cx - cap // 2, 0), min(cx + cap // 2, w)
    labels, n = ndimage.label(mask[y0:y1, x0:x1] > 0)
    if n == 0:
        return size
    r = size // 2
    near = labels[max(cy - r, y0) - y0:min(cy + r, y1) - y0, max(cx - r, x0) - x0:min(cx + r, x1) - x0]
    ids = np.unique(near[near > 0])
    if len(ids) == 0:
        return size
    ys, xs = np.nonzero(np.isin(labels, ids))
    half = max(abs(int(ys.min()) + y0 - cy), abs(int(ys.max()) + y0 - cy),
               abs(int(xs.min()) + x0 - cx), abs(int(xs.max()) + x0 - cx)) + 8
    return int(min(max(2 * half, size), cap))


def shrink(patch: np.ndarray, size: int, binary: bool = False) -> np.ndarray:
    """A side x side patch scaled to size x size (area average; >= 0.5 for a binary mask)."""
    if patch.shape[-1] == size:
        return patch
    out = cv2.resize(np.asarray(patch, np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return (out >= 0.5).astype(patch.dtype) if binary else out.astype(np.float32)


def grow(prob: np.ndarray, side: int) -> np.ndarray:
    """The network's size x size output scaled back to the side x side box it saw."""
    if prob.shape[-1] == side:
        return prob
    return cv2.resize(np.asarray(prob, np.float32), (side, side), interpolation=cv2.INTER_LINEAR)


def zoomed_inputs(image_box: np.ndarray, mask_box: np.ndarray, fg, bg, box, size: int = PATCH):
    """(image (1,S,S), mask+clicks (3,S,S)) for a box of any side, shrunk to the input size S.

    image_box / mask_box: the box's normalised image (0 outside the slice) and label; fg / bg:
    click points in slice coordinates (those near the box count, as in stack_inputs)."""
    y0, y1, x0, x1 = box
    side = y1 - y0
    scale = size / side
    margin = 16 / scale

    def inside(points):
        return [((float(p[0]) - y0 + 0.5) * scale - 0.5, (float(p[1]) - x0 + 0.5) * scale - 0.5)
                for p in points if y0 - margin <= p[0] < y1 + margin and x0 - margin <= p[1] < x1 + margin]

    return stack_inputs(shrink(image_box, size), shrink(mask_box, size, binary=True),
                        inside(fg), inside(bg), (0, size, 0, size))
