"""`bench-clicks`: the robot-user benchmark of click refinement (PROTOCOLS.md section 1, 2D mode).

For every case of DATA/imagesTs (+ labelsTs), the slice with the largest foreground area and every
k-th foreground slice are refined by each engine, from each start (the shipped model's initial
mask, "init", or an empty mask, "zero"), with each clicker (exact or noisy), up to 20 clicks.
One CSV row per evaluated slice and combination; a summary table on stdout.
"""
from __future__ import annotations

import csv
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
NAME = "bench-clicks"
HELP = "robot-user click benchmark of the refinement engines (NoC@85/90, Dice per click, latency)"

ROW_FIELDS = ["case", "slice", "engine", "start", "clicker", "noc85", "noc90", "dice_0", "dice_1",
              "dice_3", "dice_5", "dice_10", "ms_median", "ms_p95", "clicks", "fg_pixels", "mode",
              "auc5"]
SUMMARY_FIELDS = ["mode", "engine", "start", "clicker", "slices", "noc85", "noc90", "nof90",
                  "dice_0", "dice_1", "dice_3", "dice_5", "dice_10", "auc5", "ms_median", "ms_p95",
                  "calls"]


def add_arguments(parser):
    parser.add_argument("--data", default=str(REPO / ".." / "shared" / "data" / "bench"),
                        help="dataset folder with imagesTs/ and labelsTs/ (MSD layout; default "
                             "../shared/data/bench next to the repository)")
    parser.add_argument("--split", default="Ts", help="Ts (default) or Tr")
    parser.add_argument("--engine", default="geodesic-crf",
                        help="engine name or comma list (see app.core.refine.REFINERS); "
                             "geodesic engines take a solver suffix, e.g. geodesic-crf:fast-marching; "
                             "in --mode 3d a '+propagate' suffix (combined+propagate) propagates the "
                             "corrected slice to its neighbours after every click")
    parser.add_argument("--start", default="init", help="init, zero, or a comma list")
    parser.add_argument("--clicker", default="exact", help="exact, noisy, or a comma list")
    parser.add_argument("--model", default=None,
                        help="model for --start init (default: the app's default model)")
    parser.add_argument("--init-dir", default=None,
                        help="folder of precomputed initial masks <case>.nii.gz (instead of a model)")
    parser.add_argument("--init-cache", default=str(REPO / "benchmarks" / "out" / "init_cache"),
                        help="folder where model initial masks/probabilities are cached per case")
    parser.add_argument("--mode", default="2d", choices=["2d", "3d"],
                        help="2d: sessions per slice; 3d: 5 clicks per volume at the largest "
                             "26-connected error (exact clicker; Dice and its area over 5 clicks)")
    parser.add_argument("--every-k", type=int, default=8, help="evaluate every k-th foreground slice")
    parser.add_argument("--cases", default=None, help="comma list of case names to keep")
    parser.add_argument("--max-clicks", type=int, default=20)
    parser.add_argument("--full", action="store_true",
                        help="always run all clicks (default: stop after 10 clicks once Dice >= 0.90)")
    parser.add_argument("--seed", type=int, default=0, help="noisy clicker seed")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "clicks.csv"),
                        help="per-slice CSV")
    parser.add_argument("--summary-out", default=None, help="also write the summary table as CSV")
    parser.add_argument("--patch", type=int, default=None,
                        help="side of the correction net's input patch in pixels for the "
                             "correction-net and combined engines (default: its training size)")
    parser.add_argument("--correction-weights", default=None,
                        help="correction-net weights for the correction-net and combined engines "
                             "(default: the shipped models/weights/correction_net.pt)")


@dataclass
class Combination:
    engine: str
    start: str
    clicker: str
    rows: list[dict] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def run(args) -> int:
    data = Path(args.data)
    engines = [e.strip() for e in args.engine.split(",") if e.strip()]
    starts = [s.strip() for s in args.start.split(",") if s.strip()]
    clickers = [c.strip() for c in args.clicker.split(",") if c.strip()]
    for s in starts:
        if s not in ("init", "zero"):
            raise SystemExit(f"error: --start must be init or zero, got {s!r}")
    if args.mode == "2d" and any(e.endswith(PROPAGATE_SUFFIX) for e in engines):
        raise SystemExit(f"error: '{PROPAGATE_SUFFIX}' engines need --mode 3d")
    refiners = {name: make_refiner(name, args.correction_weights, args.patch) for name in engines}
    from app.core import graphcut

    # Start the graph-cut worker before timing anything (its ~0.1-2 s start-up is not a click).
    graphcut.graph_cut_2d(np.zeros((8, 8), np.float32), np.full((8, 8), 0.5, np.float32))
    cases = list_cases(data, args.split, args.cases)
    print(machine_line())
    print(f"data: {data} ({args.split}, {len(cases)} cases), every {args.every_k}-th fg slice, "
          f"engines {engines}, starts {starts}, clickers {clickers}")
    if args.mode == "3d":
        clickers = ["exact"]
    combos = {(e, s, c): Combination(e, s, c) for e in engines for s in starts for c in clickers}
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ROW_FIELDS)
        writer.writeheader()
        for case, image_path, label_path in cases:
            volume, label = load_case(image_path, label_path)
            starts_for_case = {s: initial_masks(s, case, volume, args) for s in starts}
            if args.mode == "3d":
                for (e, s, c), combo in combos.items():
                    start_mask, prior = starts_for_case[s]
                    row, secs = run_one_3d(refiners[e], volume, label, start_mask, prior,
                                           propagate=e.endswith(PROPAGATE_SUFFIX))
                    row.update(case=case, slice=-1, engine=e, start=s, clicker="exact", mode="3d")
                    combo.rows.append(row)
                    combo.seconds.extend(secs)
                    writer.writerow(row)
                print(f"  {case}: done", flush=True)
                continue
            run_case_2d(case, volume, label, starts_for_case, combos, refiners, args.every_k,
                        args.seed, args.max_clicks, args.full, on_row=writer.writerow)
            handle.flush()
            print(f"  {case}: done", flush=True)
    summary = [summarise(combo, args.max_clicks) for combo in combos.values()]
    print_table(summary)
    print(f"per-slice rows: {out_path}")
    if args.summary_out:
        write_csv(Path(args.summary_out), SUMMARY_FIELDS, summary)
        print(f"summary: {args.summary_out}")
    return 0


PROPAGATE_SUFFIX = "+propagate"   # 3D mode: propagate the corrected slice after every click


def make_refiner(spec: str, correction_weights=None, patch=None):
    """An engine by name; 'geodesic-crf:raster-scan' picks the geodesic solver (for comparing);
    correction_weights: another correction-net file for the engines that use the network."""
    from dataclasses import replace

    from app.core.refine import get_refiner

    spec = spec.removesuffix(PROPAGATE_SUFFIX)
    name, _, method = spec.partition(":")
    refiner = get_refiner(name)
    if correction_weights is not None and hasattr(refiner, "weights"):
        refiner.weights = str(correction_weights)
    if patch is not None and hasattr(refiner, "patch"):
        refiner.patch = int(patch)
    if method:
        if not hasattr(refiner, "params"):
            raise SystemExit(f"error: engine {name} has no geodesic solver to choose")
        refiner.params = replace(refiner.params, method=method)
    return refiner


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"machine: {os.cpu_count()} cores, {cpu}, no GPU used"


def list_cases(data: Path, split: str, keep: str | None):
    images = data / f"images{split}"
    labels = data / f"labels{split}"
    if not images.is_dir() or not labels.is_dir():
        from app.core.errors import InputError

        raise InputError(f"{data} has no images{split}/ and labels{split}/ folders (MSD layout).")
    wanted = None if keep is None else {c.strip() for c in keep.split(",")}
    out = []
    for label_path in sorted(labels.glob("*.nii.gz")):
        case = label_path.name[: -len(".nii.gz")]
        if wanted is not None and case not in wanted:
            continue
        image_path = images / f"{case}_0000.nii.gz"
        if image_path.exists():
            out.append((case, image_path, label_path))
    return out


def load_case(image_path, label_path):
    from app.core.volume_io import read_label, read_volume

    volume = read_volume(image_path)
    label = read_label(label_path, volume).array > 0
    return volume, label


def initial_masks(start: str, case: str, volume, args):
    """(start mask volume, prior probability volume or None) for one case."""
    if start == "zero":
        return np.zeros(volume.shape, np.uint8), None
    if args.init_dir:
        from app.core.volume_io import read_label

        return read_label(Path(args.init_dir) / f"{case}.nii.gz", volume).array > 0, None
    model = args.model
    if model is None:
        from models import zoo

        model = zoo.DEFAULT_MODEL
    from app.core.segmentation import cached_proposal

    cache = Path(args.init_cache) / model / f"{case}.npz" if args.init_cache else None
    return cached_proposal(volume, model, cache)


def evaluation_slices(label, every_k):
    from app.core.robot_user import evaluation_slices as slices

    return slices(label, every_k)


def run_one(refiner, image, gt, start_mask, prior, spacing, clicker, seed, max_clicks, full):
    from app.core.robot_user import DICE_AT, run_session

    session = run_session(refiner, image, gt, start_mask, prior=prior, spacing=spacing,
                          mode=clicker, seed=seed, max_clicks=max_clicks,
                          stop_at=None if full else 0.90)
    secs = session.seconds
    row = {"noc85": session.noc(0.85), "noc90": session.noc(0.90),
           "ms_median": round(1e3 * float(np.median(secs)), 2) if secs else 0.0,
           "ms_p95": round(1e3 * float(np.percentile(secs, 95)), 2) if secs else 0.0,
           "clicks": len(secs), "fg_pixels": int(np.count_nonzero(gt))}
    for k in DICE_AT:
        row[f"dice_{k}"] = round(session.dice_after(k), 4)
    return row, secs


def run_case_2d(case, volume, label, masks, combos, refiners, every_k, seed, max_clicks, full,
                on_row=None) -> None:
    """Every (engine, start, clicker) combination on the case's evaluation slices (2D mode):
    rows and click times go into each Combination, and each row to on_row as it is made.
    masks: start -> (start mask volume, prior volume or None)."""
    spacing = (volume.spacing[1], volume.spacing[0])
    for z in evaluation_slices(label, every_k):
        for (e, s, c), combo in combos.items():
            start_mask, prior = masks[s]
            row, secs = run_one(refiners[e], volume.array[z], label[z], start_mask[z],
                                None if prior is None else prior[z], spacing, c,
                                seed=seed + z, max_clicks=max_clicks, full=full)
            row.update(case=case, slice=z, engine=e, start=s, clicker=c, mode="2d")
            combo.rows.append(row)
            combo.seconds.extend(secs)
            if on_row is not None:
                on_row(row)


def run_one_3d(refiner, volume, gt, start_mask, prior, propagate: bool = False):
    from app.core.robot_user import area_under_dice, run_session_3d

    spacing_zyx = tuple(reversed(volume.spacing))
    session = run_session_3d(refiner, volume.array, gt, start_mask, prior=prior,
                             spacing_zyx=spacing_zyx, max_clicks=5, propagate=propagate)
    secs = session.seconds
    row = {"noc85": session.noc(0.85), "noc90": session.noc(0.90),
           "ms_median": round(1e3 * float(np.median(secs)), 2) if secs else 0.0,
           "ms_p95": round(1e3 * float(np.percentile(secs, 95)), 2) if secs else 0.0,
           "clicks": len(secs), "fg_pixels": int(np.count_nonzero(gt)),
           "auc5": round(area_under_dice(session, 5), 4)}
    for k in (0, 1, 3, 5, 10):
        row[f"dice_{k}"] = round(session.dice_after(k), 4)
    return row, secs


def summarise(combo: Combination, max_clicks: int) -> dict:
    rows = combo.rows
    out = {"mode": rows[0].get("mode", "2d") if rows else "2d", "engine": combo.engine,
           "start": combo.start, "clicker": combo.clicker,
           "slices": len(rows), "calls": len(combo.seconds)}
    if not rows:
        return out
    out["noc85"] = round(float(np.mean([r["noc85"] for r in rows])), 2)
    out["noc90"] = round(float(np.mean([r["noc90"] for r in rows])), 2)
    out["nof90"] = int(sum(r["noc90"] >= max_clicks for r in rows))
    for k in (0, 1, 3, 5, 10):
        out[f"dice_{k}"] = round(float(np.mean([r[f"dice_{k}"] for r in rows])), 4)
    if rows[0].get("auc5") is not None:
        out["auc5"] = round(float(np.mean([r["auc5"] for r in rows])), 3)
    secs = np.asarray(combo.seconds) * 1e3
    out["ms_median"] = round(float(np.median(secs)), 1) if len(secs) else 0.0
    out["ms_p95"] = round(float(np.percentile(secs, 95)), 1) if len(secs) else 0.0
    return out


def print_table(summary: list[dict]) -> None:
    head = (f"{'engine':18s} {'start':5s} {'clicker':7s} {'n':>4s} {'NoC85':>6s} {'NoC90':>6s} "
            f"{'NoF90':>5s} {'D@0':>6s} {'D@1':>6s} {'D@3':>6s} {'D@5':>6s} {'D@10':>6s} "
            f"{'ms med':>7s} {'ms p95':>7s}")
    print(head)
    print("-" * len(head))
    for s in summary:
        if not s.get("slices"):
            continue
        print(f"{s['engine']:18s} {s['start']:5s} {s['clicker']:7s} {s['slices']:4d} "
              f"{s['noc85']:6.2f} {s['noc90']:6.2f} {s['nof90']:5d} {s['dice_0']:6.3f} "
              f"{s['dice_1']:6.3f} {s['dice_3']:6.3f} {s['dice_5']:6.3f} {s['dice_10']:6.3f} "
              f"{s['ms_median']:7.1f} {s['ms_p95']:7.1f}"
              + (f"  AUC5 {s['auc5']:.3f} (of 6, start counted)" if "auc5" in s else ""))


def paired_difference(base_rows, rows, metric: str = "noc90", n_boot: int = 2000,
                      seed: int = 0) -> dict:
    """`rows` against `base_rows` on the slices both hold (matched by case and slice): how many
    slices are better / worse / equal (lower is better for NoC), the mean difference, and a paired
    bootstrap 95 % interval of it. On ~50 slices one slice that stops or starts failing moves a
    mean NoC by 0.3, so a variant is only worth taking when the count agrees with the mean."""
    base = {(r["case"], int(r["slice"])): float(r[metric]) for r in base_rows}
    diffs = np.array([float(r[metric]) - base[(r["case"], int(r["slice"]))] for r in rows
                      if (r["case"], int(r["slice"])) in base])
    if len(diffs) == 0:
        return {"n": 0, "better": 0, "worse": 0, "equal": 0, "mean": 0.0, "low": 0.0, "high": 0.0}
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), (n_boot, len(diffs)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"n": int(len(diffs)), "better": int((diffs < 0).sum()), "worse": int((diffs > 0).sum()),
            "equal": int((diffs == 0).sum()), "mean": float(diffs.mean()), "low": float(low),
            "high": float(high)}


def write_csv(path: Path, fields, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
