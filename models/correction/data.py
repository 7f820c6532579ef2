"""Training patches for the correction net: simulated masks with errors, robot clicks, GT target.

Masks with errors come from four sources per foreground slice: the ground truth eroded, dilated,
an empty mask (a first click on an untouched slice), and -- when given -- the shipped U-Net's own
prediction (the errors the app's users will actually correct). The click goes where the robot
user of the benchmark clicks: at the maximum of the distance transform of the larger error
(false negatives -> foreground click, false positives -> background click). Some samples also get
1-2 older clicks of each kind inside the patch, as a session would have.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from models.correction.inputs import (PATCH, crop, normalise_slice, patch_box, shrink, zoom_side,
                                      zoomed_inputs)


def robot_click(gt: np.ndarray, mask: np.ndarray):
    """((y, x), is_fg) at the EDT maximum of the larger error, or None when there is none: the
    first click of app/core/robot_user.py's robot (which the session training uses itself)."""
    best = None
    for region, is_fg in ((gt & ~mask, True), (mask & ~gt, False)):
        if not region.any():
            continue
        dist = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
        peak = np.unravel_index(int(np.argmax(dist)), dist.shape)
        if best is None or dist[peak] > best[0]:
            best = (float(dist[peak]), (int(peak[0]), int(peak[1])), is_fg)
    return None if best is None else (best[1], best[2])


def simulated_masks(gt: np.ndarray, rng: np.random.Generator, unet_mask=None):
    """[(kind, mask)] with errors to correct."""
    out = []
    r = int(rng.integers(2, 7))
    out.append(("erode", ndimage.binary_erosion(gt, iterations=r)))
    out.append(("dilate", ndimage.binary_dilation(gt, iterations=int(rng.integers(2, 7)))))
    out.append(("empty", np.zeros_like(gt)))
    if unet_mask is not None and (unet_mask != gt).any():
        out.append(("unet", unet_mask.astype(bool)))
    return out


def _extra_clicks(gt, mask, box, rng, n):
    """Up to n older clicks per class inside the box, on pixels the mask already gets right."""
    y0, y1, x0, x1 = box
    fg, bg = [], []
    for want, store in ((True, fg), (False, bg)):
        ok = (gt == want) & (mask == want)
        sub = np.zeros_like(ok)
        sub[max(y0, 0):y1, max(x0, 0):x1] = ok[max(y0, 0):y1, max(x0, 0):x1]
        pts = np.argwhere(sub)
        for i in rng.permutation(len(pts))[:int(rng.integers(0, n + 1))]:
            store.append((int(pts[i][0]), int(pts[i][1])))
    return fg, bg


def slice_samples(image: np.ndarray, gt: np.ndarray, rng: np.random.Generator, unet_mask=None,
                  image_norm=None, patch: int = PATCH, max_zoom: float = 1.0):
    """[(image (1,P,P), mask+clicks (3,P,P), target (1,P,P))] for one slice."""
    gt = gt.astype(bool)
    norm = normalise_slice(image) if image_norm is None else image_norm
    out = []
    for _, mask in simulated_masks(gt, rng, unet_mask):
        click = robot_click(gt, mask)
        if click is None:
            continue
        (cy, cx), is_fg = click
        box = patch_box(gt.shape, (cy, cx), zoom_side(mask, (cy, cx), patch, max_zoom))
        fg, bg = ([], []) if rng.random() < 0.5 else _extra_clicks(gt, mask, box, rng, 2)
        (fg if is_fg else bg).append((cy, cx))
        out.append(box_sample(norm, mask, gt, fg, bg, box, patch))
    return out


def box_sample(norm: np.ndarray, mask: np.ndarray, gt: np.ndarray, fg, bg, box, patch: int = PATCH):
    """(image, mask+clicks, target) for a box of any side, shrunk to the network's input."""
    img, rest = zoomed_inputs(crop(norm, box, 0.0), crop(mask, box, 0), fg, bg, box, patch)
    target = shrink(crop(gt.astype(np.float32), box, 0.0), patch, binary=True)[None]
    return img, rest, target


def stack_samples(samples):
    """[(image, mask+clicks, target), ...] -> three float16 arrays (None for no samples): the
    stored form of every patch set (first-click, session, synthetic)."""
    if not samples:
        return None
    return [np.stack([s[k] for s in samples]).astype(np.float16) for k in range(3)]
