"""Class-balanced slice sampling: tumour and tumour-free slices drawn in equal numbers.

balance="case" (the default) first draws a case uniformly, then one of its slices: every volume
counts the same however many tumour slices it has. balance="slice" draws slices uniformly, which
lets the data source with the biggest tumours dominate: on the bench set the 10 brain volumes hold
7 % of the training tumour slices (81 of 1,162), and a slice-balanced U-Net never predicted a brain tumour (max
probability 0.006 on the test brains).
"""
from __future__ import annotations

import numpy as np
import torch

from models import preprocess
from models.training.dataset import Case


class SlicePool:
    """All slices of some cases, split by tag, drawn with replacement in balanced batches."""

    def __init__(self, cases: list[Case], context: int, balance: str = "case"):
        if balance not in ("case", "slice"):
            raise ValueError(f"balance must be 'case' or 'slice', got {balance!r}")
        self.cases = cases
        self.context = context
        self.balance = balance
        refs = [(ci, z, bool(t)) for ci, case in enumerate(cases) for z, t in enumerate(case.tags)]
        self.positive = np.array([(ci, z) for ci, z, t in refs if t], dtype=np.int64).reshape(-1, 2)
        self.negative = np.array([(ci, z) for ci, z, t in refs if not t], dtype=np.int64).reshape(-1, 2)
        # per case: the rows of self.positive / self.negative that belong to it
        self._by_case = {
            kind: [np.flatnonzero(refs_[:, 0] == ci) for ci in range(len(cases))
                   if np.any(refs_[:, 0] == ci)]
            for kind, refs_ in (("positive", self.positive), ("negative", self.negative))}

    def __len__(self) -> int:
        return len(self.positive) + len(self.negative)

    def draw(self, n: int, rng: np.random.Generator, positive_fraction: float = 0.5):
        """(images (n, C, S, S), labels (n, S, S) float, tags (n,) long) as torch tensors."""
        n_pos = int(round(n * positive_fraction))
        if len(self.negative) == 0:
            n_pos = n
        if len(self.positive) == 0:
            n_pos = 0
        picks = []
        if n_pos:
            picks.append(self._pick("positive", n_pos, rng))
        if n - n_pos:
            picks.append(self._pick("negative", n - n_pos, rng))
        refs = np.concatenate(picks)
        images, labels, tags = [], [], []
        for ci, z in refs:
            case = self.cases[ci]
            images.append(preprocess.stack_neighbours(case.image, self.context, [z])[0])
            labels.append(case.label[z])
            tags.append(case.tags[z])
        return (torch.from_numpy(np.stack(images).astype(np.float32)),
                torch.from_numpy(np.stack(labels).astype(np.float32)),
                torch.from_numpy(np.asarray(tags, dtype=np.int64)))

    def _pick(self, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
        """n (case, z) rows of one kind, uniform over slices or over cases then slices."""
        refs = getattr(self, kind)
        if self.balance == "slice":
            return refs[rng.integers(0, len(refs), n)]
        groups = self._by_case[kind]
        chosen = rng.integers(0, len(groups), n)
        return refs[[groups[g][rng.integers(0, len(groups[g]))] for g in chosen]]


def choose_strong_cases(cases: list[Case], fraction: float, seed: int) -> list[Case]:
    """The cases whose strong labels mixed supervision may use: `fraction` of them, drawn per data
    source (sts/btp...) so that a small fraction still includes every kind of image."""
    if fraction >= 1.0:
        return list(cases)
    if fraction <= 0.0:
        return []
    rng = np.random.default_rng(seed + 1000)
    by_source: dict[str, list[Case]] = {}
    for case in cases:
        by_source.setdefault(case.name[:3], []).append(case)
    chosen = []
    for source in sorted(by_source):
        group = by_source[source]
        n = max(1, int(round(fraction * len(group))))
        order = rng.permutation(len(group))[:n]
        chosen += [group[i] for i in sorted(order)]
    return chosen
