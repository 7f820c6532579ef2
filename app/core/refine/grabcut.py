"""`grabcut`: OpenCV GrabCut on the same window, seeded with the same clicks (classic baseline).

The current mask gives "probably foreground/background", the seed disks "surely"; GrabCut fits
its colour models on the window and cuts. Nothing outside the window changes.
"""
from __future__ import annotations

import time

import numpy as np

from app.core.refine.base import CheckedRequest, Refiner, RefineRequest, choose_window
from app.core.refine.geodesic import standardise_window


class GrabCutRefiner(Refiner):
    name = "grabcut"

    def __init__(self, iterations: int = 3):
        self.iterations = iterations

    def _refine(self, request: RefineRequest, checked: CheckedRequest):
        import cv2

        t0 = time.perf_counter()
        box, _reach = choose_window(checked, request.options)
        y0, y1, x0, x1 = box
        img = standardise_window(checked.image[y0:y1, x0:x1], smooth_px=0.0)
        grey = np.clip((img + 3.0) / 6.0 * 255.0, 0, 255).astype(np.uint8)
        rgb = np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=-1))
        current = checked.mask[y0:y1, x0:x1]
        fg, bg = checked.seed_masks(box)
        gc_mask = np.where(current > 0, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        gc_mask[bg] = cv2.GC_BGD
        gc_mask[fg] = cv2.GC_FGD
        label = current.copy()
        has_fg = (gc_mask % 2 == 1).any()      # FGD=1, PR_FGD=3
        has_bg = (gc_mask % 2 == 0).any()      # BGD=0, PR_BGD=2
        if has_fg and has_bg:
            bgd_model = np.zeros((1, 65), np.float64)
            fgd_model = np.zeros((1, 65), np.float64)
            try:
                cv2.grabCut(rgb, gc_mask, None, bgd_model, fgd_model, self.iterations,
                            cv2.GC_INIT_WITH_MASK)
                label = ((gc_mask == cv2.GC_FGD) | (gc_mask == cv2.GC_PR_FGD)).astype(np.uint8)
            except cv2.error:
                pass        # too few samples for a colour model: keep the seeds-only answer
        out = checked.mask.copy()
        out[y0:y1, x0:x1] = label
        return out, box, {"grabcut": time.perf_counter() - t0}
