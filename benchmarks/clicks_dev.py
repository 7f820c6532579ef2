"""Engine variants compared on the development set, never on the test set.

The development set is the validation cases the shipped U-Net and correction net were selected on
(imagesTr/labelsTr, listed in models/weights/unet.json): choices about the default engine are made
here, and benchmarks/clicks.py then reports the chosen engine once on imagesTs.

    .venv/bin/python benchmarks/clicks_dev.py --variants base,trust --starts init,zero \
        --weights models/weights/correction_net.pt --out benchmarks/out/clicks_dev.csv
    .venv/bin/python benchmarks/clicks_dev.py --variants trust --weights A.pt,B.pt   # files side by side

Same robot, slices (largest + every k-th foreground slice) and metrics as bench-clicks (2D, exact
clicker); a summary table on stdout, each variant against the first slice by slice (how many
slices better / worse, and a bootstrap interval of the NoC@90 difference), and one row per slice and
variant in --out.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.special import expit, logit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.cli import bench_clicks as bench  # noqa: E402
from app.core.refine import CombinedRefiner, GeodesicParams  # noqa: E402
from app.core.refine.clear_object import is_first_click_on_empty  # noqa: E402
from app.core.refine.correction_net import CorrectionNetRefiner  # noqa: E402


class ShiftedCombined(CombinedRefiner):
    """`combined` with the net's log-odds shifted by `bias` before the cut (a threshold other than
    0.5: does the net put edges systematically inside or outside the reference?)."""

    def __init__(self, bias: float, **kwargs):
        super().__init__(**kwargs)
        self.bias = bias

    def _network_probability(self, request, checked):
        box, prob = super()._network_probability(request, checked)
        p = np.clip(prob, 1e-4, 1 - 1e-4)
        return box, expit(logit(p) + self.bias).astype(np.float32)


class CombinedWithOptions(CombinedRefiner):
    """`combined` with some RefineOptions replaced (graph-cut weight, click reach)."""

    def __init__(self, overrides: dict, **kwargs):
        super().__init__(**kwargs)
        self.overrides = overrides

    def _refine(self, request, checked):
        request = replace(request, options=replace(request.options, **self.overrides))
        return super()._refine(request, checked)


class EmptyBoxCombined(CombinedRefiner):
    """`combined` with other cut parameters for a foreground click with no labelled pixel near it
    (refine/clear_object.is_first_click_on_empty): the network draws a small blob there whatever
    the object's size (benchmarks/first_click_disks.py), the geodesic term does not."""

    def __init__(self, empty_params: GeodesicParams, **kwargs):
        super().__init__(clear_contrast=None, **kwargs)
        self.empty_params = empty_params

    def _refine(self, request, checked):
        empty = is_first_click_on_empty(checked.mask, checked.newest, checked.newest_is_fg)
        shipped = self.params
        self.params = self.empty_params if empty else shipped
        try:
            return super()._refine(request, checked)
        finally:
            self.params = shipped


def variants(weights):
    """name -> engine factory. `base` is `combined` with the net alone deciding inside its patch;
    `trust` is the shipped engine. Session 7 added, around `trust`: threshold shift (bias*),
    graph-cut weight (lam*), reach (rf*: reach factor, rmin*: minimum reach in mm), free zone
    (zone*), first-click cut parameters (emptyfg-*) and the clear-object rule's gate (no-clear,
    clear*)."""
    table = {
        "base": lambda: CombinedRefiner(weights=weights, prior_trust=False),
        "trust": lambda: CombinedRefiner(weights=weights, prior_trust=True),
        "trust-pw3": lambda: CombinedRefiner(GeodesicParams(prior_weight=3.0), weights=weights,
                                             prior_trust=True),
        "trust-p96": lambda: CombinedRefiner(weights=weights, prior_trust=True, patch=96),
        "zoom2": lambda: CombinedRefiner(weights=weights, prior_trust=True, max_zoom=2.0),
        "zoom3": lambda: CombinedRefiner(weights=weights, prior_trust=True, max_zoom=3.0),
        "net": lambda: CorrectionNetRefiner(weights=weights),
        "net-zoom2": lambda: CorrectionNetRefiner(weights=weights, max_zoom=2.0),
        "net-zoom3": lambda: CorrectionNetRefiner(weights=weights, max_zoom=3.0),
    }
    for b in (-1.0, -0.5, 0.5, 1.0):
        table[f"bias{b:+g}"] = lambda b=b: ShiftedCombined(b, weights=weights)
    for lam in (2.0, 8.0):
        table[f"lam{lam:g}"] = lambda lam=lam: CombinedWithOptions({"lam": lam}, weights=weights)
    for rf in (3.0, 4.0):
        table[f"rf{rf:g}"] = lambda rf=rf: CombinedWithOptions({"reach_factor": rf}, weights=weights)
    for rm in (4.0, 6.0):
        table[f"rmin{rm:g}"] = lambda rm=rm: CombinedWithOptions({"reach_min_mm": rm},
                                                                 weights=weights)
    for z in (3.0, 4.0, 6.0, 8.0, 12.0):
        table[f"zone{z:g}"] = lambda z=z: CombinedRefiner(GeodesicParams(prior_weight=1.5, zone=z),
                                                          weights=weights)
    table["emptyfg-pw0.5"] = lambda: EmptyBoxCombined(GeodesicParams(prior_weight=0.5),
                                                      weights=weights)
    table["emptyfg-a10"] = lambda: EmptyBoxCombined(GeodesicParams(prior_weight=1.5, alpha=10.0),
                                                    weights=weights)
    # Session 7: the clear-object rule (refine/clear_object.py, shipped at 3) off / at 2 / at 4.
    table["no-clear"] = lambda: CombinedRefiner(weights=weights, clear_contrast=None)
    for c in (2.0, 4.0):
        table[f"clear{c:g}"] = lambda c=c: CombinedRefiner(weights=weights, clear_contrast=c)
    return table


def development_cases() -> list[str]:
    meta = json.loads((ROOT / "models" / "weights" / "unet.json").read_text(encoding="utf-8"))
    return list(meta["training"]["validation_cases"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / ".." / "shared" / "data" / "bench"))
    parser.add_argument("--weights", default=None,
                        help="correction-net file (default: shipped); several, comma-separated, "
                             "run every variant with each (named VARIANT@FILE-STEM)")
    parser.add_argument("--variants", default="base,trust")
    parser.add_argument("--starts", default="init,zero")
    parser.add_argument("--every-k", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "clicks_dev.csv"))
    args = parser.parse_args(argv)
    files = [w.strip() for w in (args.weights or "").split(",") if w.strip()] or [None]
    wanted = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in variants(None)]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {sorted(variants(None))}")
    engines = {}
    for weights in files:
        table = variants(weights)
        for n in wanted:
            engines[n if len(files) == 1 else f"{n}@{Path(weights).stem}"] = table[n]()
    names = list(engines)
    starts = [s.strip() for s in args.starts.split(",") if s.strip()]
    cache = argparse.Namespace(init_dir=None, model=None,
                               init_cache=str(ROOT / "benchmarks" / "out" / "init_cache"))
    combos = {(n, s, "exact"): bench.Combination(n, s, "exact") for n in names for s in starts}
    data = Path(args.data)
    print(bench.machine_line())
    cases = development_cases()
    print(f"development cases (imagesTr): {', '.join(cases)}")
    for case in cases:
        volume, label = bench.load_case(data / "imagesTr" / f"{case}_0000.nii.gz",
                                        data / "labelsTr" / f"{case}.nii.gz")
        masks = {s: bench.initial_masks(s, case, volume, cache) for s in starts}
        bench.run_case_2d(case, volume, label, masks, combos, engines, args.every_k, seed=0,
                          max_clicks=20, full=False)
        print(f"  {case}: done", flush=True)
    summary = [bench.summarise(combo, 20) for combo in combos.values()]
    bench.print_table(summary)
    print_paired(combos, names, starts)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=bench.ROW_FIELDS)
        writer.writeheader()
        for combo in combos.values():
            writer.writerows(combo.rows)
    print(f"per-slice rows: {out}")
    return 0


def print_paired(combos, names, starts) -> None:
    """Each variant against the first, slice by slice (NoC@90; lower is better)."""
    for start in starts:
        base = combos[(names[0], start, "exact")].rows
        for name in names[1:]:
            d = bench.paired_difference(base, combos[(name, start, "exact")].rows)
            print(f"{name} vs {names[0]} ({start}): {d['better']} slices better, {d['worse']} worse, "
                  f"{d['equal']} equal; NoC@90 {d['mean']:+.2f} (95 % {d['low']:+.2f} .. {d['high']:+.2f})")


if __name__ == "__main__":
    raise SystemExit(main())
