"""Carry a corrected slice to its neighbours, slice by slice, until the object ends.

For each next slice the previous slice's mask is the prior: a shape term (its signed distance,
so the outline may move a few millimetres but not jump) plus an intensity term (how likely each
pixel's grey value is under the foreground and background grey values seen on the previous
slice), cut with the graph cut of app/core/graphcut.py on a window around the previous outline.
It stops in each direction when the object ends (the new mask is empty or shrinks below
`min_ratio` of the previous one), at a locked slice (one the user already corrected), or at the
volume's edge.

`propagate_job` is a generator job (yields Progress, checks a CancelToken) so the GUI can show
progress and cancel; `propagate` runs it inline.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from app.core import graphcut
from app.core.jobs import CancelToken, Job, Progress, run_job


@dataclass(frozen=True)
class PropagationParams:
    shape_scale_mm: float = 2.0    # softness of the shape prior: logit = signed distance / scale
    shape_weight: float = 1.0
    intensity_weight: float = 1.0
    intensity_clip: float = 4.0    # cap on the grey-value log-likelihood ratio
    margin_mm: float = 10.0        # window around the previous outline
    lam: float = 4.0
    min_ratio: float = 0.15        # stop when the area falls below this fraction of the previous
    max_growth: float = 1.3        # ...or grows beyond this factor (a leak, not the object)
    min_support: float = 0.0       # ...or its mean grey-value log-likelihood ratio drops below
    shape_cap: float = 2.0         # the shape term may say "inside" at most this strongly
    min_pixels: int = 4
    max_slices: int | None = None  # per direction


@dataclass
class PropagationResult:
    label: np.ndarray              # (z, y, x) uint8, the whole new label volume
    changed_slices: list[int]
    stopped: dict[str, str]        # direction -> why it stopped


def propagate_job(image: np.ndarray, label: np.ndarray, start: int, spacing_zyx=(1.0, 1.0, 1.0),
                  locked: set[int] | frozenset[int] = frozenset(),
                  params: PropagationParams | None = None,
                  cancel: CancelToken | None = None) -> Job:
    """Generator job returning a PropagationResult; `label[start]` is the corrected slice."""
    params = params or PropagationParams()
    image = np.asarray(image)
    out = (np.asarray(label) > 0).astype(np.uint8).copy()
    if image.shape != out.shape or image.ndim != 3:
        raise ValueError(f"image {image.shape} and label {out.shape} must be the same 3D shape")
    if not 0 <= start < out.shape[0]:
        raise ValueError(f"slice {start} is outside the volume's {out.shape[0]} slices")
    spacing = (float(spacing_zyx[1]), float(spacing_zyx[2]))
    changed: list[int] = []
    stopped: dict[str, str] = {}
    total = out.shape[0] - 1
    done = 0
    for name, step in (("down", -1), ("up", 1)):
        previous = out[start].astype(bool)
        z = start + step
        count = 0
        reason = "volume edge"
        while 0 <= z < out.shape[0]:
            if cancel is not None:
                cancel.raise_if_cancelled()
            if not previous.any():
                reason = "empty start slice"
                break
            if z in locked:
                reason = f"locked slice {z}"
                break
            if params.max_slices is not None and count >= params.max_slices:
                reason = "slice limit"
                break
            new, support = next_slice(image[z], image[z - step], previous, spacing, params,
                                      reference=(image[start], out[start] > 0))
            area, previous_area = int(new.sum()), int(previous.sum())
            if (area < params.min_pixels or area < params.min_ratio * previous_area
                    or area > params.max_growth * previous_area or support < params.min_support):
                reason = f"object ended at slice {z}"
                break
            out[z] = new
            changed.append(z)
            previous = new.astype(bool)
            z += step
            count += 1
            done += 1
            yield Progress(min(done, total), total, f"propagated to slice {z - step}")
        stopped[name] = reason
    yield Progress(total, total, "propagation done")
    return PropagationResult(label=out, changed_slices=sorted(changed), stopped=stopped)


def propagate(image, label, start, spacing_zyx=(1.0, 1.0, 1.0), locked=frozenset(),
              params: PropagationParams | None = None) -> PropagationResult:
    return run_job(propagate_job(image, label, start, spacing_zyx, locked, params))


def next_slice(image: np.ndarray, previous_image: np.ndarray, previous: np.ndarray,
               spacing=(1.0, 1.0), params: PropagationParams | None = None,
               reference: tuple[np.ndarray, np.ndarray] | None = None):
    """(mask, support): the mask of `image` given the neighbouring slice's mask `previous`, and
    the mean grey-value log-likelihood ratio inside it (how much the image, not the shape prior,
    says "object"). Grey-value models come from `reference` (the corrected slice and its mask)
    when given, so they do not drift from slice to slice, else from the previous slice."""
    params = params or PropagationParams()
    sy, sx = spacing
    ys, xs = np.nonzero(previous)
    my, mx = params.margin_mm / sy, params.margin_mm / sx
    y0, y1 = max(int(ys.min() - my), 0), min(int(ys.max() + my) + 1, image.shape[0])
    x0, x1 = max(int(xs.min() - mx), 0), min(int(xs.max() + mx) + 1, image.shape[1])
    prev = previous[y0:y1, x0:x1]
    img = np.asarray(image, np.float32)[y0:y1, x0:x1]

    # Shape: signed distance to the previous outline (mm, positive inside).
    inside = ndimage.distance_transform_edt(prev, sampling=(sy, sx))
    outside = ndimage.distance_transform_edt(~prev, sampling=(sy, sx))
    # The shape term places the outline; capped inside, so the interior needs grey-value support
    # and the propagation cannot carry a tumour's outline through muscle forever.
    logit = np.minimum(params.shape_weight * (inside - outside) / params.shape_scale_mm,
                       params.shape_cap)

    # Grey values: Gaussian models of the object and of the ring around it.
    if reference is not None:
        ref_img, ref_mask = reference
        ref_box = (np.asarray(ref_img, np.float32), np.asarray(ref_mask, bool))
    else:
        ref_box = (np.asarray(previous_image, np.float32), np.asarray(previous, bool))
    llr = np.zeros(prev.shape, np.float32)
    models = _grey_models(*ref_box, (sy, sx))
    if models is not None:
        (fg_mean, fg_sd), (bg_mean, bg_sd) = models
        llr = np.clip(_log_gauss(img, fg_mean, fg_sd) - _log_gauss(img, bg_mean, bg_sd),
                      -params.intensity_clip, params.intensity_clip)
        logit = logit + params.intensity_weight * llr
    prob = 1.0 / (1.0 + np.exp(-np.clip(logit, -30, 30)))
    frame = np.zeros(prev.shape, bool)
    frame[[0, -1], :] = True
    frame[:, [0, -1]] = True
    cut = graphcut.graph_cut_2d(img, prob.astype(np.float32), lam=params.lam, bg_seeds=frame)
    cut = _largest_overlapping(cut.astype(bool), prev)
    cut = ndimage.binary_fill_holes(cut)
    out = np.zeros(image.shape, np.uint8)
    out[y0:y1, x0:x1] = cut
    support = float(llr[cut].mean()) if cut.any() else -np.inf
    return out, support


def _grey_models(image, mask, spacing):
    ring = ndimage.binary_dilation(mask, iterations=max(2, int(round(5.0 / min(spacing))))) & ~mask
    if mask.sum() < 4 or ring.sum() < 4:
        return None
    return _robust(image[mask]), _robust(image[ring])


def _robust(values: np.ndarray) -> tuple[float, float]:
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med))) * 1.4826
    return med, max(mad, 1e-3 * (abs(med) + 1.0), 1e-3)


def _log_gauss(x, mean, sd):
    return -0.5 * ((x - mean) / sd) ** 2 - np.log(sd)


def _largest_overlapping(mask: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Keep the components that overlap the previous mask (the object, not a lookalike nearby)."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    keep = np.unique(labels[previous & mask])
    keep = keep[keep > 0]
    return np.isin(labels, keep)
