"""Qt-free helpers of the annotation controller: Dice texts, recovery check, warm-up."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from app.core.autosave import find_recoverable
from app.core.errors import SegLoopError


def dice_of(label: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Dice per reference class (before a session exists; the session tracks it afterwards)."""
    out = {}
    for v in [int(v) for v in np.unique(reference) if v]:
        a, b = label == v, reference == v
        total = int(a.sum()) + int(b.sum())
        out[str(v)] = 2.0 * int((a & b).sum()) / total if total else 1.0
    return out


def dice_text(dice: dict[str, float] | None) -> str:
    if not dice:
        return ""
    if len(dice) == 1:
        return f"volume Dice {next(iter(dice.values())):.3f}"
    return "volume Dice " + " · ".join(f"class {k}: {v:.3f}" for k, v in dice.items())


def unsettled_recovery(autosave_root: Path, image_path) -> bool:
    """Whether unsaved work of an earlier session waits to be restored or discarded for this image."""
    target = Path(image_path).resolve()
    return any(r.image_path is not None and r.image_path.resolve() == target
               for r in find_recoverable(autosave_root))


def warm_up_plan(engine: str):
    """A click on a small synthetic slice, in memory only (no log, no autosave)."""
    from app.core.session import AnnotationSession
    from app.core.volume import Volume

    rng = np.random.default_rng(0)
    image = rng.normal(0, 1, (1, 48, 48)).astype(np.float32)
    image[0, 16:32, 16:32] += 4
    try:
        return AnnotationSession(Volume(image), engine=engine).prepare_click(0, 0, (24, 24), True)
    except SegLoopError:
        return None
