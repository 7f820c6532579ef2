"""Click-to-screen latency: from the mouse event to the refined overlay painted on screen.

Each click or scribble carries a ClickTiming stamped with time.perf_counter() at: the mouse event
(the slice view's click handler, which Qt calls while delivering the release), the plan handed to
the refinement worker, the engine's start and end on the worker, the result applied to the
session on the GUI thread, and the synchronous repaint of the viewport finished. The last minus
the first is what the user waits for; the parts say where the time goes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ClickTiming:
    event: float = field(default_factory=time.perf_counter)
    submitted: float | None = None
    compute_start: float | None = None
    compute_end: float | None = None
    applied: float | None = None
    painted: float | None = None
    engine: str = ""
    kind: str = "click"
    recomputed: int = 0           # times the result was stale and the click planned again

    @staticmethod
    def _ms(a: float | None, b: float | None) -> float:
        return float("nan") if a is None or b is None else (b - a) * 1e3

    @property
    def total_ms(self) -> float:
        return self._ms(self.event, self.painted)

    @property
    def wait_ms(self) -> float:
        """Queued behind earlier clicks, plus the hand-over to the worker thread."""
        return self._ms(self.event, self.compute_start)

    @property
    def compute_ms(self) -> float:
        return self._ms(self.compute_start, self.compute_end)

    @property
    def apply_ms(self) -> float:
        """Result back on the GUI thread and applied (log line, autosave notice, overlay)."""
        return self._ms(self.compute_end, self.applied)

    @property
    def paint_ms(self) -> float:
        return self._ms(self.applied, self.painted)

    def as_row(self) -> dict:
        return {"kind": self.kind, "engine": self.engine, "recomputed": self.recomputed,
                "wait_ms": round(self.wait_ms, 3), "compute_ms": round(self.compute_ms, 3),
                "apply_ms": round(self.apply_ms, 3), "paint_ms": round(self.paint_ms, 3),
                "click_to_screen_ms": round(self.total_ms, 3)}


class LatencyProbe:
    """The timings of every click and scribble applied in this window, newest last."""

    def __init__(self, keep: int = 10000):
        self.samples: list[ClickTiming] = []
        self.keep = keep

    def add(self, timing: ClickTiming) -> None:
        self.samples.append(timing)
        del self.samples[:-self.keep]

    @property
    def last(self) -> ClickTiming | None:
        return self.samples[-1] if self.samples else None

    def summary(self) -> dict[str, float]:
        """Median and p95 of click-to-screen and of the engine alone, in ms."""
        total = np.array([s.total_ms for s in self.samples], float)
        compute = np.array([s.compute_ms for s in self.samples], float)
        if not len(total):
            return {"n": 0}
        return {"n": len(total), "median_ms": float(np.median(total)),
                "p95_ms": float(np.percentile(total, 95)),
                "compute_median_ms": float(np.median(compute)),
                "compute_p95_ms": float(np.percentile(compute, 95))}
