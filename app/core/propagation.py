"""Carry a corrected slice to its neighbours, slice by slice, until the object ends.

For each next slice the previous slice's mask is the prior: a shape term (its signed distance,
so the outline may move a few millimetres but not jump) plus an intensity term (how likely each
pixel's grey value is under the foreground and background grey values seen on the previous
slice), cut with the graph cut of app/core/graphcut.py on a window around the previous outline.
It stops in each direction when the object ends (the new mask is empty or shrinks below
`min_ratio` of the previous one, or -- given a network probability volume `prior` -- the network
no longer sees the object there; a prior that does not see the object on the start slice either
is ignored, since that is the network's miss the user is correcting), at a locked slice (one the
user already corrected), at a slice that already holds the object where the propagated shape
would land (`existing="stop"`, the default: such a slice was labelled by someone, and replacing it
wiped correct labels -- coronal propagation on lits117_ct took the liver from Dice ~0.6 to
0.002), or at the volume's edge.

Only the propagated value is written, and only on background or on that value: other label
values are never touched, nor are pixels of the value away from the propagated shape (a second
lesion on the same slice stays). `axis` picks the direction (0 axial, 1 coronal, 2 sagittal).

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
    existing: str = "stop"         # a slice already holding the object where the cut lands:
                                   # "stop" there, "add" to it (union), or "overwrite" (replace
                                   # every pixel of the value on that slice)
    prior_weight: float = 1.0      # weight of logit(network probability) when a prior is given
    prior_stop: float = 0.35       # stop when the mean probability inside the new mask is below


@dataclass
class PropagationResult:
    label: np.ndarray              # (z, y, x), the whole new label volume (input dtype and values)
    changed_slices: list[int]
    stopped: dict[str, str]        # direction -> why it stopped


def propagate_job(image: np.ndarray, label: np.ndarray, start: int, spacing_zyx=(1.0, 1.0, 1.0),
                  locked: set[int] | frozenset[int] = frozenset(),
                  params: PropagationParams | None = None,
                  cancel: CancelToken | None = None, *, axis: int = 0, value: int | None = None,
                  prior: np.ndarray | None = None) -> Job:
    """Generator job returning a PropagationResult; slice `start` along `axis` is the corrected one.

    value: the label value to propagate (None: any non-zero value counts as the object and 1 is
    written). prior: optional network foreground probability, same shape as image. The result's
    label has the input's values and dtype; changed_slices/stopped refer to indices along axis.
    """
    params = params or PropagationParams()
    if params.existing not in ("stop", "add", "overwrite"):
        raise ValueError(f"existing must be stop, add or overwrite, got {params.existing!r}")
    image = np.asarray(image)
    label = np.asarray(label)
    if image.shape != label.shape or image.ndim != 3:
        raise ValueError(f"image {image.shape} and label {label.shape} must be the same 3D shape")
    if prior is not None and np.shape(prior) != image.shape:
        raise ValueError(f"prior {np.shape(prior)} must have the image's shape {image.shape}")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    # Walk along axis 0 of transposed views; writes go through the view into `result`.
    result = label.copy()
    img = np.moveaxis(image, axis, 0)
    lab = np.moveaxis(result, axis, 0)
    pri = None if prior is None else np.moveaxis(np.asarray(prior, np.float32), axis, 0)
    sp = [float(v) for v in spacing_zyx]
    sp = [sp[axis]] + [v for i, v in enumerate(sp) if i != axis]
    write = 1 if value is None else int(value)
    obj = (lab > 0) if value is None else (lab == value)
    if not 0 <= start < lab.shape[0]:
        raise ValueError(f"slice {start} is outside the volume's {lab.shape[0]} slices")
    spacing = (sp[1], sp[2])
    if pri is not None and obj[start].any() and float(pri[start][obj[start]].mean()) < params.prior_stop:
        # The network does not see the object the user just drew (it missed it): its prior would
        # stop the walk at once and pull each slice towards "nothing here", so do without it.
        pri = None
    changed: list[int] = []
    stopped: dict[str, str] = {}
    total = lab.shape[0] - 1
    done = 0
    for name, step in (("down", -1), ("up", 1)):
        previous = obj[start].copy()
        z = start + step
        count = 0
        reason = "volume edge"
        while 0 <= z < lab.shape[0]:
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
            new, support = next_slice(img[z], img[z - step], previous, spacing, params,
                                      reference=(img[start], obj[start]),
                                      prior=None if pri is None else pri[z])
            new = new.astype(bool)
            area, previous_area = int(new.sum()), int(previous.sum())
            if (area < params.min_pixels or area < params.min_ratio * previous_area
                    or area > params.max_growth * previous_area or support < params.min_support):
                reason = f"object ended at slice {z}"
                break
            if pri is not None and float(pri[z][new].mean()) < params.prior_stop:
                reason = f"object ended at slice {z} (network prior)"
                break
            here = obj[z]
            landing = here & ndimage.binary_dilation(new | previous, iterations=2)
            if landing.any() and params.existing == "stop":
                reason = f"slice {z} already holds the object"
                break
            if params.existing == "overwrite":
                landing = here.copy()               # the whole slice's object is replaced
                lab[z][landing & ~new] = 0
            # Only background or the propagated value itself is written; other values stay.
            free = new & ((lab[z] == 0) | here)
            lab[z][free] = write
            obj[z] = here | free
            if params.existing == "overwrite":
                obj[z] &= ~(landing & ~new)
            changed.append(z)
            previous = new & free
            z += step
            count += 1
            done += 1
            yield Progress(min(done, total), total, f"propagated to slice {z - step}")
        stopped[name] = reason
    yield Progress(total, total, "propagation done")
    return PropagationResult(label=result, changed_slices=sorted(changed), stopped=stopped)


def propagate(image, label, start, spacing_zyx=(1.0, 1.0, 1.0), locked=frozenset(),
              params: PropagationParams | None = None, *, axis: int = 0, value: int | None = None,
              prior: np.ndarray | None = None) -> PropagationResult:
    return run_job(propagate_job(image, label, start, spacing_zyx, locked, params, axis=axis,
                                 value=value, prior=prior))


def next_slice(image: np.ndarray, previous_image: np.ndarray, previous: np.ndarray,
               spacing=(1.0, 1.0), params: PropagationParams | None = None,
               reference: tuple[np.ndarray, np.ndarray] | None = None, prior=None):
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
    if prior is not None:
        p = np.clip(np.asarray(prior, np.float32)[y0:y1, x0:x1], 0.02, 0.98)
        logit = logit + params.prior_weight * np.log(p / (1.0 - p))
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
