"""Undo/redo as compact diffs: the box of voxels an action changed, before and after, plus seeds.

An edit keeps only the bounding box of the voxels that really changed (zlib-compressed, labels
compress ~100x), so a click on a 512x512 slice costs a few kB, not a volume. Undo writes `before`
back into the box: the label is restored bit for bit because every changed voxel is inside it.
The history is capped in bytes; the oldest steps are dropped first (the newest is always kept).
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from app.core.seeds import Seed, SliceKey

Box = tuple[int, int, int, int, int, int]  # z0, z1, y0, y1, x0, x1 (half-open)
DEFAULT_HISTORY_BYTES = 256 * 1024 * 1024


def box_slices(box: Box) -> tuple[slice, slice, slice]:
    return slice(box[0], box[1]), slice(box[2], box[3]), slice(box[4], box[5])


def box_shape(box: Box) -> tuple[int, int, int]:
    return box[1] - box[0], box[3] - box[2], box[5] - box[4]


def box_from_slices(slices: tuple[slice, slice, slice], shape) -> Box:
    out = []
    for s, n in zip(slices, shape):
        start, stop, _ = s.indices(n)
        out += [start, stop]
    return tuple(out)


def changed_box(old: np.ndarray, new: np.ndarray, origin: tuple[int, int, int]) -> Box | None:
    """Bounding box (in volume coordinates) of the voxels where two blocks differ, or None."""
    diff = old != new
    if not diff.any():
        return None
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(diff.any(axis=other))
        box += [origin[axis] + int(hit[0]), origin[axis] + int(hit[-1]) + 1]
    return tuple(box)


@dataclass(frozen=True)
class SeedChange:
    key: SliceKey
    before: tuple[Seed, ...]
    after: tuple[Seed, ...]


@dataclass(frozen=True)
class Edit:
    """One undoable step. `box` is None when only seeds changed (e.g. a click that changed nothing)."""
    kind: str
    box: Box | None = None
    before: bytes = b""
    after: bytes = b""
    seeds: tuple[SeedChange, ...] = ()
    uid: int = 0  # unique within a session's history: names the edit's autosave file

    @property
    def nbytes(self) -> int:
        return len(self.before) + len(self.after) + 64 * sum(
            len(c.before) + len(c.after) for c in self.seeds) + 128

    def block(self, which: str) -> np.ndarray:
        data = zlib.decompress(self.before if which == "before" else self.after)
        return np.frombuffer(data, dtype=np.uint8).reshape(box_shape(self.box))


def make_edit(kind: str, label_before_block: np.ndarray, label_after_block: np.ndarray,
              origin: tuple[int, int, int], seeds: tuple[SeedChange, ...] = ()) -> Edit:
    """An edit from two blocks of the label taken at `origin`; cropped to what changed."""
    box = changed_box(label_before_block, label_after_block, origin)
    if box is None:
        return Edit(kind, None, b"", b"", seeds)
    local = tuple(slice(box[2 * a] - origin[a], box[2 * a + 1] - origin[a]) for a in range(3))
    before = np.ascontiguousarray(label_before_block[local], dtype=np.uint8)
    after = np.ascontiguousarray(label_after_block[local], dtype=np.uint8)
    return Edit(kind, box, zlib.compress(before, 1), zlib.compress(after, 1), seeds)


@dataclass
class History:
    cap_bytes: int = DEFAULT_HISTORY_BYTES
    undo_stack: list[Edit] = field(default_factory=list)
    redo_stack: list[Edit] = field(default_factory=list)
    dropped: int = 0  # steps lost to the cap, reported so the user knows why undo stopped early
    next_uid: int = 1

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.undo_stack) + sum(e.nbytes for e in self.redo_stack)

    def push(self, edit: Edit) -> Edit:
        edit = replace(edit, uid=self.next_uid)
        self.next_uid += 1
        self.undo_stack.append(edit)
        self.redo_stack.clear()
        total = self.nbytes
        while len(self.undo_stack) > 1 and total > self.cap_bytes:
            total -= self.undo_stack.pop(0).nbytes
            self.dropped += 1
        return edit

    def pop_undo(self) -> Edit | None:
        if not self.undo_stack:
            return None
        edit = self.undo_stack.pop()
        self.redo_stack.append(edit)
        return edit

    def pop_redo(self) -> Edit | None:
        if not self.redo_stack:
            return None
        edit = self.redo_stack.pop()
        self.undo_stack.append(edit)
        return edit



def edit_to_bytes(edit: Edit) -> bytes:
    """One edit as a JSON line + its two compressed blocks (for autosave; no pickle)."""
    meta = {"uid": edit.uid, "kind": edit.kind, "box": list(edit.box) if edit.box else None,
            "n_before": len(edit.before), "n_after": len(edit.after),
            "seeds": [{"key": list(c.key), "before": [s.to_json() for s in c.before],
                       "after": [s.to_json() for s in c.after]} for c in edit.seeds]}
    return json.dumps(meta).encode("utf-8") + b"\n" + edit.before + edit.after


def edit_from_bytes(data: bytes) -> Edit:
    head, _, rest = data.partition(b"\n")
    meta = json.loads(head.decode("utf-8"))
    n_before, n_after = int(meta["n_before"]), int(meta["n_after"])
    if len(rest) != n_before + n_after:
        raise ValueError("edit record is truncated")
    seeds = tuple(SeedChange(tuple(c["key"]), tuple(Seed.from_json(s) for s in c["before"]),
                             tuple(Seed.from_json(s) for s in c["after"])) for c in meta["seeds"])
    return Edit(meta["kind"], tuple(meta["box"]) if meta["box"] else None, rest[:n_before],
                rest[n_before:], seeds, int(meta["uid"]))
