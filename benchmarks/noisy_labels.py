"""Benchmark (PROTOCOLS.md §4): learning from disagreeing annotators on LIDC nodule slices.

Trains plain / cm / majority (see models/noisy_labels/training.py) for every seed in the same run on
the same slices, predicts test.npz from the images alone and scores Dice and IoU against the
consensus, plus the generalised energy distance (GED, d = 1 - IoU) of the model's masks against the
real annotators: cm samples 16 annotators per slice from its latent prior, plain and majority give
one deterministic mask. Reference rows (not methods: they read the test annotators) show what one
reader and the STAPLE fusion of the readers score against the same consensus.

    .venv/bin/python benchmarks/noisy_labels.py --data ../shared/data/lidc --seeds 0 1 2

Prints a table; writes per-slice and per-run CSVs to benchmarks/out/ and the summary to
benchmarks/results/noisy_labels.csv.
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

METHOD_ORDER = ("plain", "cm", "majority")


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _run_one(job: dict) -> dict:
    """One (method, seed) training run in a worker process; returns scores and timings."""
    import torch

    from models.noisy_labels import TrainConfig, load_slices, mean_ged, run_training, score_slices

    torch.set_num_threads(1)
    data = Path(job["data"])
    train_set, val_set, test_set = (load_slices(data / f"{s}.npz") for s in ("train", "val", "test"))
    overrides = job["cm_overrides"] if job["method"] == "cm" else {}
    config = TrainConfig(method=job["method"], seed=job["seed"], epochs=job["epochs"], threads=1,
                         **overrides)
    start = time.perf_counter()
    model = run_training(config, train_set, val_set)
    train_seconds = time.perf_counter() - start
    rows = score_slices(model.net, test_set)
    ged = mean_ged(model.net, test_set, n_samples=job["ged_samples"], seed=job["seed"])
    return {"method": job["method"], "seed": job["seed"], "best_epoch": model.best_epoch,
            "val_dice": model.best_val_dice, "train_seconds": train_seconds, "ged": ged,
            "rows": rows,
            "val_curve": [round(log.val_dice, 4) for log in model.history]}


def _references(data: Path) -> list[dict]:
    """What the test readers themselves score against the consensus (context, not methods)."""
    from app.core.consensus import majority_vote, staple
    from models.noisy_labels import dice, generalised_energy_distance, iou, load_slices

    test = load_slices(data / "test.npz")
    single_d, single_i, staple_d, staple_i, vote_same, single_ged = [], [], [], [], 0, []
    for i in range(len(test)):
        readers = list(test.annotator_masks(i))
        c = test.consensus[i]
        single_d.append(np.mean([dice(m, c) for m in readers]))
        single_i.append(np.mean([iou(m, c) for m in readers]))
        fused = staple(readers).mask
        staple_d.append(dice(fused, c))
        staple_i.append(iou(fused, c))
        vote_same += int(np.array_equal(majority_vote(readers), c))
        # GED of the consensus as a single deterministic "prediction"
        single_ged.append(generalised_energy_distance(c[None], np.stack(readers)))
    return [
        {"method": "ref: one test reader", "dice": np.mean(single_d), "iou": np.mean(single_i)},
        {"method": "ref: STAPLE of test readers", "dice": np.mean(staple_d), "iou": np.mean(staple_i)},
        {"method": "ref: consensus itself", "dice": 1.0, "iou": 1.0, "ged": np.mean(single_ged),
         "note": f"majority_vote == consensus on {vote_same}/{len(test)} test slices"},
    ]


def _write_csv(path: Path, header, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)


def _mean_sd(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def summarise(runs: list[dict], data: Path, results_path: Path, epochs, footer: str = "",
              sources: str = "") -> None:
    """Mean +- sd per method over its seeds, the plain->majority gap cm closes (per seed, on the
    seeds all three methods share), the reader references; printed and written to results_path."""
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in runs)]
    per_seed = {(r["method"], r["seed"]): r["dice"] for r in runs}
    summary = []
    for method in methods:
        mine = [r for r in runs if r["method"] == method]
        dice_m, dice_s = _mean_sd([r["dice"] for r in mine])
        iou_m, iou_s = _mean_sd([r["iou"] for r in mine])
        ged_m, ged_s = _mean_sd([r["ged"] for r in mine])
        summary.append({"method": method, "seeds": len(mine), "dice": dice_m, "dice_sd": dice_s,
                        "iou": iou_m, "iou_sd": iou_s, "ged": ged_m, "ged_sd": ged_s,
                        "train_seconds": np.median([r["train_seconds"] for r in mine])})
    gap_note = ""
    seeds_of = [{r["seed"] for r in runs if r["method"] == m} for m in METHOD_ORDER]
    shared = sorted(set.intersection(*seeds_of))
    if shared:
        wins = sum(per_seed[("cm", s)] > per_seed[("plain", s)] for s in shared)
        closed = [(per_seed[("cm", s)] - per_seed[("plain", s)])
                  / (per_seed[("majority", s)] - per_seed[("plain", s)]) for s in shared
                  if per_seed[("majority", s)] != per_seed[("plain", s)]]
        by = {row["method"]: row["dice"] for row in summary}
        closed_of_means = ((by["cm"] - by["plain"]) / (by["majority"] - by["plain"])
                           if by["majority"] != by["plain"] else float("nan"))
        gap_note = (f"cm beats plain on {wins}/{len(shared)} seeds; share of the plain->majority "
                    f"Dice gap closed by cm: {closed_of_means:.2f} (of the means), per seed "
                    f"{', '.join(f'{c:.2f}' for c in closed)}")
        if sources:
            gap_note += f"; runs from {sources}"
    references = _references(data)

    header = f"{'method':<30}{'Dice':>16}{'IoU':>16}{'GED':>16}{'train s':>9}"
    print("\n" + header + "\n" + "-" * len(header))
    for row in summary:
        print(f"{row['method']:<30}{row['dice']:>9.4f} ± {row['dice_sd']:.4f}"
              f"{row['iou']:>9.4f} ± {row['iou_sd']:.4f}{row['ged']:>9.4f} ± {row['ged_sd']:.4f}"
              f"{row['train_seconds']:>9.0f}")
    for ref in references:
        ged = f"{ref['ged']:>16.4f}" if "ged" in ref else f"{'':>16}"
        print(f"{ref['method']:<30}{ref['dice']:>16.4f}{ref['iou']:>16.4f}{ged}")
    print(f"\n{gap_note}\n{references[-1]['note']}\n{footer}")

    _write_csv(results_path,
               ["method", "seeds", "epochs", "dice_mean", "dice_sd", "iou_mean", "iou_sd",
                "ged_mean", "ged_sd", "median_train_seconds", "note"],
               [[r["method"], r["seeds"], epochs, f"{r['dice']:.4f}", f"{r['dice_sd']:.4f}",
                 f"{r['iou']:.4f}", f"{r['iou_sd']:.4f}", f"{r['ged']:.4f}", f"{r['ged_sd']:.4f}",
                 f"{r['train_seconds']:.0f}", gap_note if r["method"] == "cm" else ""]
                for r in summary]
               + [[ref["method"], "", "", f"{ref['dice']:.4f}", "", f"{ref['iou']:.4f}", "",
                   f"{ref['ged']:.4f}" if "ged" in ref else "", "", "", ref.get("note", "")]
                  for ref in references])


def read_runs(paths: list[str]) -> list[dict]:
    """Per-run rows from earlier runs CSVs (this script's noisy_labels_runs.csv); a (method, seed)
    in a later file replaces the same one from an earlier file (e.g. a re-run of cm alone after a
    change that touches only cm)."""
    by_key: dict[tuple, dict] = {}
    for path in paths:
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                run = {"method": row["method"], "seed": int(row["seed"]), "dice": float(row["dice"]),
                       "iou": float(row["iou"]), "ged": float(row["ged"]),
                       "train_seconds": float(row["train_seconds"])}
                by_key[(run["method"], run["seed"])] = run
    return sorted(by_key.values(), key=lambda r: (METHOD_ORDER.index(r["method"]), r["seed"]))


def main(argv=None) -> int:
    from models.noisy_labels.training import DEFAULT_EPOCHS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "lidc"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHOD_ORDER), choices=METHOD_ORDER)
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--workers", type=int, default=2, help="parallel runs, 1 thread each")
    parser.add_argument("--ged-samples", type=int, default=16)
    parser.add_argument("--cm-set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a TrainConfig field for cm only (ablations), e.g. "
                             "pseudo_weight=1.0; repeatable")
    parser.add_argument("--from-runs", nargs="+", metavar="RUNS_CSV",
                        help="train nothing: summarise runs CSVs written by earlier runs (later "
                             "files replace the same method and seed from earlier ones)")
    parser.add_argument("--out-dir", default=str(REPO / "benchmarks" / "out"))
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "noisy_labels.csv"))
    args = parser.parse_args(argv)
    data = Path(args.data)
    for split in ("train", "val", "test"):
        if not (data / f"{split}.npz").is_file():
            print(f"error: {data / f'{split}.npz'} not found", file=sys.stderr)
            return 2
    if args.from_runs:
        summarise(read_runs(args.from_runs), data, Path(args.results), args.epochs,
                  sources=", ".join(Path(p).as_posix() for p in args.from_runs))
        return 0

    cm_overrides = {}
    for item in args.cm_set:
        key, _, value = item.partition("=")
        try:
            cm_overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            cm_overrides[key] = value
    jobs = [{"data": str(data), "method": m, "seed": s, "epochs": args.epochs,
             "ged_samples": args.ged_samples, "cm_overrides": cm_overrides}
            for s in args.seeds for m in args.methods]
    print(f"{len(jobs)} runs ({', '.join(args.methods)} x seeds {args.seeds}), {args.epochs} epochs, "
          f"{args.workers} workers x 1 thread on {os.cpu_count()} cores ({_cpu_name()})"
          + (f"; cm overrides {cm_overrides}" if cm_overrides else ""), flush=True)
    start = time.perf_counter()
    results = []
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for result in pool.imap_unordered(_run_one, jobs):
            rows = result["rows"]
            print(f"  {result['method']:<8} seed {result['seed']}: test dice "
                  f"{np.mean([r.dice for r in rows]):.4f}  iou {np.mean([r.iou for r in rows]):.4f}  "
                  f"GED {result['ged']:.4f}  (best epoch {result['best_epoch']}, val "
                  f"{result['val_dice']:.4f}, {result['train_seconds']:.0f} s)", flush=True)
            results.append(result)
    wall = time.perf_counter() - start
    results.sort(key=lambda r: (METHOD_ORDER.index(r["method"]), r["seed"]))

    out_dir = Path(args.out_dir)
    _write_csv(out_dir / "noisy_labels_per_slice.csv",
               ["method", "seed", "slice_id", "n_annotators", "dice", "iou", "predicted_pixels",
                "consensus_pixels"],
               [[r["method"], r["seed"], s.slice_id, s.n_annotators, f"{s.dice:.6f}", f"{s.iou:.6f}",
                 s.predicted_pixels, s.consensus_pixels] for r in results for s in r["rows"]])
    _write_csv(out_dir / "noisy_labels_runs.csv",
               ["method", "seed", "dice", "iou", "ged", "best_epoch", "val_dice", "train_seconds",
                "val_curve"],
               [[r["method"], r["seed"], f"{np.mean([s.dice for s in r['rows']]):.4f}",
                 f"{np.mean([s.iou for s in r['rows']]):.4f}", f"{r['ged']:.4f}", r["best_epoch"],
                 f"{r['val_dice']:.4f}", f"{r['train_seconds']:.0f}",
                 " ".join(map(str, r["val_curve"]))] for r in results])

    runs = [{"method": r["method"], "seed": r["seed"],
             "dice": float(np.mean([x.dice for x in r["rows"]])),
             "iou": float(np.mean([x.iou for x in r["rows"]])), "ged": r["ged"],
             "train_seconds": r["train_seconds"]} for r in results]
    summarise(runs, data, Path(args.results), args.epochs,
              footer=f"wall time {wall / 60:.1f} min; test slices {len(results[0]['rows'])}; "
                     f"{os.cpu_count()} cores, {_cpu_name()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
