"""A first foreground click on a clearly outlined object takes the whole object.

The correction network, trained on low-contrast tumours, answers a first click on an empty
neighbourhood with a blob of about 10-12 px radius whatever the object's size (a bright disk of
radius 28 px: 24 % taken; benchmarks/first_click_disks.py). The geodesic graph cut takes all of a
clear object but leaks out of a low-contrast one, which is why `combined` does not simply trust it
on first clicks (on the development tumours that costs 0.5-1 clicks from empty, BENCHMARKS §3).
So the geodesic region is added only when its edge is clear: its inside differs from a thin ring
around it by at least `min_contrast` pooled standard deviations. At 3 that gate opened on none of
our real tumour slices (development and test slices of the click benchmark, first clicks on the
four bundled cases): those keep the network's answer; a clear lesion is taken whole.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

NEIGHBOURHOOD_PX = 32     # "empty": no labelled pixel within the network's half patch of the click
RING_PX = 3


def _edge_statistics(image: np.ndarray, region: np.ndarray):
    """(contrast, mean inside, mean of the ring), or None for a region too small to tell:
    contrast = |mean inside - mean of a RING_PX ring outside| / pooled SD."""
    ring = ndimage.binary_dilation(region, iterations=RING_PX) & ~region
    inner = ndimage.binary_erosion(region, iterations=1)
    if inner.sum() < 5 or ring.sum() < 5:
        return None
    a, b = image[inner].astype(np.float64), image[ring].astype(np.float64)
    sd = np.sqrt(0.5 * (a.var() + b.var()))
    return float(abs(a.mean() - b.mean()) / max(sd, 1e-6)), a.mean(), b.mean()


def region_contrast(image: np.ndarray, region: np.ndarray) -> float:
    """How clearly the region stands out from a ring around it, in pooled SDs (0: too small)."""
    stats = _edge_statistics(image, region)
    return 0.0 if stats is None else stats[0]


def is_first_click_on_empty(mask: np.ndarray, point, is_fg: bool) -> bool:
    """A foreground click with no labelled pixel within NEIGHBOURHOOD_PX."""
    if not is_fg:
        return False
    y, x = int(point[0]), int(point[1])
    r = NEIGHBOURHOOD_PX
    return not mask[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1].any()


def clear_region(geodesic_mask: np.ndarray, image: np.ndarray, point,
                 min_contrast: float) -> np.ndarray | None:
    """The geodesic cut's component under the click if its edge is clear enough, else None.

    The cut works on a smoothed image, so its edge can sit a pixel outside the object's: pixels of
    the region whose grey level is nearer the ring's mean than the inside's are dropped (a clear
    8-px disk: 18 % false area before, none after), and the holes that opens inside it refilled."""
    labels, _ = ndimage.label(geodesic_mask > 0)
    y, x = int(point[0]), int(point[1])
    which = labels[y, x]
    if not which:
        return None
    region = labels == which
    stats = _edge_statistics(image, region)
    if stats is None or stats[0] < min_contrast:
        return None
    _, inside, ring = stats
    kept = region & (np.abs(image - inside) <= np.abs(image - ring))
    kept[y, x] = True
    # noise pixels inside the object fall on the ring's side too: refill the holes that leaves
    kept |= ndimage.binary_fill_holes(kept) & region
    labels, _ = ndimage.label(kept)
    return labels == labels[y, x]
