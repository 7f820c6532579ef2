"""How an edit of one label value lands in a multi-class label (LiTS: 1 liver, 2 tumour).

Engines see and return a 0/1 mask; the session edits one `value` at a time. The overwrite policy
decides which other classes that mask may take over:
- "lower" (default, nested classes as in LiTS/KiTS where a higher class lies inside a lower one):
  the object of `value` is every voxel >= value (the liver includes its tumours), foreground
  writes `value` over background and lower classes, never over a higher class;
- "none": foreground writes only over background, no other class ever changes;
- "all": foreground writes over any class.
Background (a 0 in the mask) clears only voxels *of* `value` to 0, under every policy.
"""
from __future__ import annotations

import numpy as np

POLICIES = ("lower", "none", "all")


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        from app.core.errors import SegLoopError

        raise SegLoopError(f"unknown overwrite policy {policy!r}; choose one of {', '.join(POLICIES)}.")
    return policy


def object_mask(label: np.ndarray, value: int, policy: str) -> np.ndarray:
    """The 0/1 mask an engine sees as the object being edited."""
    return ((label >= value) if policy == "lower" else (label == value)).astype(np.uint8)


def merge(old: np.ndarray, mask: np.ndarray, value: int, policy: str) -> np.ndarray:
    """`old` after the engine says `mask` (same shape) for `value`; a new array."""
    new = old.copy()
    fg = mask > 0
    if policy == "lower":
        writable = old <= value
    elif policy == "none":
        writable = (old == 0) | (old == value)
    else:
        writable = np.ones(old.shape, bool)
    new[fg & writable] = value
    new[~fg & (old == value)] = 0
    return new
