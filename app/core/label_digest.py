"""What the interaction log records about the label after each action, kept up to date cheaply.

- LabelDigest: a checksum of the whole label that replay compares step by step. It is the sha1 of
  the concatenated sha1 digests of the axial slices (plus the shape), so an edit re-hashes only the
  z-slices it touched: a click on a 300x512x512 label costs ~0.3 ms instead of ~100 ms.
- DiceTracker: Dice to a reference label per class, updated from the changed box only, through a
  joint histogram of (label value, reference value) counts; exact, never re-reads the volume.
"""
from __future__ import annotations

import hashlib

import numpy as np


def label_checksum(label: np.ndarray) -> str:
    """The checksum of a whole label (what LabelDigest.hexdigest() returns for it)."""
    return LabelDigest(label).hexdigest()


class LabelDigest:
    def __init__(self, label: np.ndarray):
        if label.dtype != np.uint8 or label.ndim != 3:
            raise ValueError(f"a label is a 3D uint8 array, got {label.dtype} {label.shape}")
        self._label = label
        self._slices = [b""] * label.shape[0]
        self.update(0, label.shape[0])

    def update(self, z0: int, z1: int) -> None:
        for z in range(z0, z1):
            plane = np.ascontiguousarray(self._label[z])
            self._slices[z] = hashlib.sha1(memoryview(plane).cast("B")).digest()

    def rebind(self, label: np.ndarray) -> None:
        """Follow a new array (the session replaced its label object) and re-hash it all."""
        self.__init__(label)

    def hexdigest(self) -> str:
        h = hashlib.sha1(("uint8 %d %d %d;" % self._label.shape).encode("ascii"))
        for d in self._slices:
            h.update(d)
        return h.hexdigest()


class DiceTracker:
    """Dice(label == c, reference == c) for every class c, from a 256x256 joint histogram."""

    def __init__(self, label: np.ndarray, reference: np.ndarray):
        if reference.shape != label.shape:
            raise ValueError(f"reference {reference.shape} differs from label {label.shape}")
        self._reference = reference
        self._joint = self._histogram(label, reference)

    @staticmethod
    def _histogram(label_block: np.ndarray, ref_block: np.ndarray) -> np.ndarray:
        # Only voxels labelled in either array need a code: (0, 0) is counted by subtraction,
        # which makes the first count over a mostly empty volume ~10x cheaper.
        lab, ref = label_block.ravel(), ref_block.ravel()
        keep = np.flatnonzero(lab | ref)
        codes = lab[keep].astype(np.int32) * 256 + ref[keep]
        hist = np.bincount(codes, minlength=65536).astype(np.int64)
        hist[0] += lab.size - keep.size
        return hist

    def update(self, box_slices, before_block: np.ndarray, after_block: np.ndarray) -> None:
        ref = self._reference[box_slices]
        self._joint -= self._histogram(before_block, ref)
        self._joint += self._histogram(after_block, ref)

    def reset(self, label: np.ndarray) -> None:
        self._joint = self._histogram(label, self._reference)

    def reference_values(self) -> list[int]:
        """The non-zero classes present in the reference."""
        n_ref = self._joint.reshape(256, 256).sum(axis=0)
        return [int(v) for v in np.flatnonzero(n_ref[1:]) + 1]

    def dice(self, values=None) -> dict[str, float]:
        """{class: Dice} for the given classes (default: every class of the reference)."""
        joint = self._joint.reshape(256, 256)
        n_label, n_ref = joint.sum(axis=1), joint.sum(axis=0)
        if values is None:
            values = [int(v) for v in np.flatnonzero(n_ref[1:]) + 1]
        out = {}
        for v in values:
            total = int(n_label[v] + n_ref[v])
            out[str(int(v))] = round(2.0 * int(joint[v, v]) / total, 6) if total else 1.0
        return out
