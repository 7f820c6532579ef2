"""The refinement interface: one verb, `Refiner.refine(RefineRequest) -> RefineResult`.

A request carries one 2D slice, the label as it is now, an optional network prior and every click
and scribble made on that slice so far (voxel index space, (y, x)), plus the newest one, which
decides where the engine may act. Engines change pixels only inside `RefineResult.region`, a box
around the newest interaction, and always end with every seed pixel on its side.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from app.core.errors import InputError

Point = tuple[int, int]


class ClickOutsideImageError(InputError):
    """A click or scribble point that does not fall on the slice."""


@dataclass(frozen=True)
class RefineOptions:
    """Knobs shared by the engines; the defaults are the ones benchmarks/clicks.py measured."""
    seed_radius_mm: float = 1.0          # a click becomes a disk this wide (hard constraint)
    window_mm: float = 64.0              # default half-size of the box an interaction may change
    window_min_mm: float = 12.0
    window_max_mm: float = 64.0
    reach_default_mm: float = 40.0       # flat-region reach of a click with nothing of its class near
    reach_min_mm: float = 2.0
    reach_factor: float = 2.0            # reach = reach_factor x distance from click to its class
    lam: float = 4.0                     # graph-cut smoothness weight (see app/core/graphcut.py)
    dense_crf: bool = False              # geodesic-crf: denseCRF pass on the window after the cut


@dataclass(frozen=True)
class RefineRequest:
    image: np.ndarray                                  # (y, x) raw intensities
    mask: np.ndarray                                   # (y, x) current label, 0/1
    fg_clicks: Sequence[Point] = ()
    bg_clicks: Sequence[Point] = ()
    newest: Point | None = None                        # the interaction this request answers
    newest_is_fg: bool | None = None                   # None: looked up in the click lists
    prior: np.ndarray | None = None                    # (y, x) foreground probability, or None
    fg_scribbles: Sequence[Sequence[Point]] = ()
    bg_scribbles: Sequence[Sequence[Point]] = ()
    spacing: tuple[float, float] = (1.0, 1.0)          # (y, x) mm per pixel
    options: RefineOptions = field(default_factory=RefineOptions)


@dataclass
class RefineResult:
    mask: np.ndarray                                   # (y, x) uint8, the whole slice
    region: tuple[int, int, int, int]                  # (y0, y1, x0, x1): nothing outside changed
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def region_slices(self) -> tuple[slice, slice]:
        y0, y1, x0, x1 = self.region
        return slice(y0, y1), slice(x0, x1)


class Refiner:
    """One engine. Subclasses implement `_refine(request, checked) -> (mask, region, timings)`."""

    name = "base"
    honours_seeds = True

    def refine(self, request: RefineRequest) -> RefineResult:
        start = time.perf_counter()
        checked = check_request(request)
        mask, region, timings = self._refine(request, checked)
        mask = np.asarray(mask, dtype=np.uint8)
        if self.honours_seeds:
            # Every engine ends with every seed honoured, so no click is ignored where it lands.
            # An older seed the given mask contradicts (far from the newest click) is repaired
            # too, and the region grows to cover it so it stays the truth about what changed.
            fg, bg = checked.seed_masks()
            wrong = (fg & (mask == 0)) | (bg & (mask == 1))
            if wrong.any():
                ys, xs = np.nonzero(wrong)
                y0, y1, x0, x1 = region
                region = (min(y0, int(ys.min())), max(y1, int(ys.max()) + 1),
                          min(x0, int(xs.min())), max(x1, int(xs.max()) + 1))
                mask[fg] = 1
                mask[bg] = 0
        return RefineResult(mask=mask, region=region, seconds=time.perf_counter() - start,
                            timings=timings)

    def _refine(self, request: RefineRequest, checked: "CheckedRequest"):
        raise NotImplementedError


@dataclass
class CheckedRequest:
    """A request after validation, with the derived geometry every engine needs."""
    image: np.ndarray            # float32
    mask: np.ndarray             # uint8 0/1
    fg_points: np.ndarray        # (n, 2) int: clicks and scribble pixels
    bg_points: np.ndarray
    newest: Point
    newest_is_fg: bool
    newest_points: np.ndarray    # the newest click, or every pixel of the newest scribble
    spacing: tuple[float, float]
    seed_radius_px: tuple[float, float]

    def seed_masks(self, box: tuple[int, int, int, int] | None = None):
        """(fg, bg) bool masks of seed disks, on the whole slice or cropped to box."""
        shape = self.mask.shape
        y0, y1, x0, x1 = box if box is not None else (0, shape[0], 0, shape[1])
        out = []
        for points in (self.fg_points, self.bg_points):
            out.append(disks((y1 - y0, x1 - x0), points - np.array([y0, x0]), self.seed_radius_px))
        fg, bg = out
        # A pixel marked both ways: the newest interaction wins, else foreground.
        newest = disks((y1 - y0, x1 - x0), self.newest_points - np.array([y0, x0]),
                       self.seed_radius_px)
        if self.newest_is_fg:
            bg &= ~newest
        else:
            fg &= ~newest
        bg &= ~fg
        return fg, bg


def disks(shape, centres: np.ndarray, radius_px: tuple[float, float]) -> np.ndarray:
    """Bool mask with an ellipse (radius in pixels per axis, >= the centre pixel) at each centre."""
    out = np.zeros(shape, dtype=bool)
    ry, rx = max(radius_px[0], 0.5), max(radius_px[1], 0.5)
    hy, hx = int(np.floor(ry)), int(np.floor(rx))
    dy, dx = np.mgrid[-hy:hy + 1, -hx:hx + 1]
    stamp = (dy / ry) ** 2 + (dx / rx) ** 2 <= 1.0
    offsets = np.argwhere(stamp) - np.array([hy, hx])
    if len(centres) == 0:
        return out
    pts = (np.asarray(centres)[:, None, :] + offsets[None, :, :]).reshape(-1, 2)
    keep = (pts[:, 0] >= 0) & (pts[:, 0] < shape[0]) & (pts[:, 1] >= 0) & (pts[:, 1] < shape[1])
    pts = pts[keep]
    out[pts[:, 0], pts[:, 1]] = True
    return out


def scribble_pixels(points: Sequence[Point]) -> np.ndarray:
    """Every pixel on the polyline through the points (a click-drag)."""
    from skimage.draw import line

    pts = [tuple(int(round(c)) for c in p) for p in points]
    if len(pts) == 1:
        return np.array(pts, dtype=int)
    rows, cols = [], []
    for (ya, xa), (yb, xb) in zip(pts[:-1], pts[1:]):
        rr, cc = line(ya, xa, yb, xb)
        rows.append(rr)
        cols.append(cc)
    return np.stack([np.concatenate(rows), np.concatenate(cols)], axis=1)


def check_request(request: RefineRequest) -> CheckedRequest:
    image = np.asarray(request.image)
    if image.ndim != 2:
        raise ValueError(f"refinement works on a 2D slice, got an array of shape {image.shape}")
    mask = np.asarray(request.mask)
    if mask.shape != image.shape:
        raise ValueError(f"mask shape {mask.shape} differs from slice shape {image.shape}")
    if request.prior is not None and np.shape(request.prior) != image.shape:
        raise ValueError(f"prior shape {np.shape(request.prior)} differs from slice shape {image.shape}")
    h, w = image.shape

    def points_of(clicks, scribbles, kind):
        arrays = []
        for p in clicks:
            arrays.append(np.array([[int(round(p[0])), int(round(p[1]))]]))
        for scribble in scribbles:
            if len(scribble):
                arrays.append(scribble_pixels(scribble))
        pts = np.concatenate(arrays) if arrays else np.zeros((0, 2), int)
        bad = (pts[:, 0] < 0) | (pts[:, 0] >= h) | (pts[:, 1] < 0) | (pts[:, 1] >= w)
        if bad.any():
            y, x = pts[np.argmax(bad)]
            raise ClickOutsideImageError(
                f"The {kind} click at (y={y}, x={x}) is outside the {h}x{w} slice.")
        return pts.astype(int)

    fg = points_of(request.fg_clicks, request.fg_scribbles, "foreground")
    bg = points_of(request.bg_clicks, request.bg_scribbles, "background")
    if len(fg) + len(bg) == 0:
        raise ValueError("a refinement needs at least one click or scribble")

    newest, newest_is_fg, newest_points = _newest(request, fg, bg, h, w)
    sy, sx = (float(s) for s in request.spacing)
    r = request.options.seed_radius_mm
    return CheckedRequest(image=image.astype(np.float32, copy=False),
                          mask=(mask > 0).astype(np.uint8), fg_points=fg, bg_points=bg,
                          newest=newest, newest_is_fg=newest_is_fg, newest_points=newest_points,
                          spacing=(sy, sx), seed_radius_px=(r / sy, r / sx))


def _newest(request, fg, bg, h, w):
    if request.newest is None:
        # Without a stated newest interaction, answer the last click given (fg list first).
        if len(request.bg_clicks) and not len(request.fg_clicks):
            newest, is_fg = tuple(request.bg_clicks[-1]), False
        elif len(request.fg_clicks):
            newest, is_fg = tuple(request.fg_clicks[-1]), True
        else:
            pts, is_fg = (fg, True) if len(fg) else (bg, False)
            newest = tuple(pts[-1])
    else:
        newest = (int(round(request.newest[0])), int(round(request.newest[1])))
        if not (0 <= newest[0] < h and 0 <= newest[1] < w):
            raise ClickOutsideImageError(
                f"The click at (y={newest[0]}, x={newest[1]}) is outside the {h}x{w} slice.")
        if request.newest_is_fg is not None:
            is_fg = bool(request.newest_is_fg)
        else:
            in_fg = bool(len(fg)) and bool(((fg == newest).all(axis=1)).any())
            in_bg = bool(len(bg)) and bool(((bg == newest).all(axis=1)).any())
            if not (in_fg or in_bg):
                raise ValueError(f"the newest click {newest} is in neither click list")
            is_fg = in_fg                       # clicked both ways: foreground wins, as in seeds
    newest = (int(newest[0]), int(newest[1]))
    points = np.array([newest])
    for scribble in (request.fg_scribbles if is_fg else request.bg_scribbles):
        pixels = scribble_pixels(scribble) if len(scribble) else np.zeros((0, 2), int)
        if len(pixels) and ((pixels == newest).all(axis=1)).any():
            points = pixels
    return newest, is_fg, points


def window_box(shape, centre_points: np.ndarray, half_px: tuple[float, float]):
    """(y0, y1, x0, x1): the box covering the points plus half_px on every side, clipped."""
    h, w = shape
    y0 = max(int(np.floor(centre_points[:, 0].min() - half_px[0])), 0)
    y1 = min(int(np.ceil(centre_points[:, 0].max() + half_px[0])) + 1, h)
    x0 = max(int(np.floor(centre_points[:, 1].min() - half_px[1])), 0)
    x1 = min(int(np.ceil(centre_points[:, 1].max() + half_px[1])) + 1, w)
    return y0, y1, x0, x1


def choose_window(checked: CheckedRequest, options: RefineOptions):
    """(box, reach_mm): the box the newest interaction may change and how far, in a flat region,
    its influence should extend.

    Sized from the click's geometry: d = distance from the click to the nearest pixel that already
    has the click's class (for a foreground click, the nearest labelled pixel). A click in the
    middle of a missed strip of width ~2d says "this strip, out to about d beyond me", so the reach
    is 3 d and the box half-size 2.5 reach (room for the cut to find the edge), within the option
    limits. With no such pixel nearby (a first click on an empty slice) the defaults apply.
    """
    sy, sx = checked.spacing
    pts = checked.newest_points
    big = window_box(checked.mask.shape, pts, (options.window_max_mm / sy, options.window_max_mm / sx))
    y0, y1, x0, x1 = big
    same = checked.mask[y0:y1, x0:x1] == (1 if checked.newest_is_fg else 0)
    if same.any():
        coords = np.argwhere(same)
        d2 = np.full(len(coords), np.inf)
        for py, px in pts[:: max(1, len(pts) // 16)]:
            d2 = np.minimum(d2, ((coords[:, 0] - (py - y0)) * sy) ** 2 + ((coords[:, 1] - (px - x0)) * sx) ** 2)
        reach_mm = options.reach_factor * float(np.sqrt(d2.min()))
        reach_mm = min(max(reach_mm, options.reach_min_mm), options.reach_default_mm)
        half_mm = 2.5 * reach_mm
    else:
        reach_mm, half_mm = options.reach_default_mm, options.window_mm
    half_mm = min(max(half_mm, options.window_min_mm), options.window_max_mm)
    return window_box(checked.mask.shape, pts, (half_mm / sy, half_mm / sx)), reach_mm


def widest_side(checked: CheckedRequest, options: RefineOptions) -> int:
    """Side in pixels of the widest window the options allow (2 x window_max_mm, finer axis)."""
    return int(2 * options.window_max_mm / min(checked.spacing))


def frame_ring(box, shape) -> np.ndarray:
    """Bool mask (box-sized) of the box's outermost pixels that are not on the image border."""
    y0, y1, x0, x1 = box
    ring = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    if y0 > 0:
        ring[0, :] = True
    if y1 < shape[0]:
        ring[-1, :] = True
    if x0 > 0:
        ring[:, 0] = True
    if x1 < shape[1]:
        ring[:, -1] = True
    return ring
