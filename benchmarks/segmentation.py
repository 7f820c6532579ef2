"""PROTOCOLS.md §2: initial segmentation on a test set, every shipped model in one run.

    python benchmarks/segmentation.py [--data ../shared/data/bench] [--models unet,fpsnet-cam,...]

For each model and each imagesTs case: Dice of the app's mask (what segment_volume returns) and of
the raw mask before post-processing (prob >= 0.5, or CAM >= its threshold for the tags-only model),
and seconds per volume. Then seconds per bundled data_source volume (median and p95 of repeats,
model already loaded). Prints a table; writes CSVs to benchmarks/out/ and copies them to
benchmarks/results/ (committed).
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from app.core import graphcut  # noqa: E402
from app.core.segmentation import load_model, segment_volume  # noqa: E402
from app.core.volume_io import read_label, read_volume  # noqa: E402
from models import zoo  # noqa: E402
from models.training.dataset import list_cases  # noqa: E402
from models.training.validation import dice  # noqa: E402

BUNDLED = ("sts002_ct", "sts002_mr", "btp10_pre_t1c", "lits117_ct")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    return (f"{os.cpu_count()} cores, {cpu}, {dev}, torch threads {torch.get_num_threads()}, "
            f"{platform.python_implementation()} {platform.python_version()}, load avg {load:.1f}")


def raw_mask(result, model) -> np.ndarray:
    if model.mask_source == "cam" and result.cam is not None:
        return result.cam >= model.cam_threshold
    return result.prob >= 0.5


def group(case: str) -> str:
    if case.startswith("btp"):
        return "btp"
    return "sts_ct" if case.endswith("_ct") else "sts_mr"


def evaluate(models, data, device, limit=None):
    rows = []
    entries = [e for e in list_cases(data, "Ts") if e[2] is not None][:limit]
    volumes = []
    for case, image_path, label_path in entries:
        volume = read_volume(image_path)
        volumes.append((case, volume, read_label(label_path, volume).array > 0))
    for name in models:
        model = load_model(name, device)
        for case, volume, truth in volumes:
            cpu = time.process_time()
            result = segment_volume(volume, name, device=device)
            cpu = time.process_time() - cpu
            rows.append({"model": name, "case": case, "group": group(case),
                         "dice": round(dice(result.label.array, truth), 4),
                         "dice_raw": round(dice(raw_mask(result, model), truth), 4),
                         "seconds": round(result.seconds, 3), "cpu_seconds": round(cpu, 3)})
            print(f"  {name:<16} {case:<12} Dice {rows[-1]['dice']:.4f} "
                  f"(raw {rows[-1]['dice_raw']:.4f})  {rows[-1]['seconds']:.2f} s", flush=True)
    return rows


def time_bundled(models, device, repeats, cases=BUNDLED):
    rows = []
    for name in models:
        load_model(name, device)
        for case in cases:
            volume = read_volume(REPO / "data_source" / f"{case}.nii.gz")
            segment_volume(volume, name, device=device)          # warm-up (allocations, worker)
            times, cpus = [], []
            for _ in range(repeats):
                t, c = time.perf_counter(), time.process_time()
                segment_volume(volume, name, device=device)
                times.append(time.perf_counter() - t)
                cpus.append(time.process_time() - c)
            rows.append({"model": name, "case": case, "size_zyx": "x".join(map(str, volume.shape)),
                         "median_s": round(float(np.median(times)), 3),
                         "p95_s": round(float(np.percentile(times, 95)), 3),
                         "median_cpu_s": round(float(np.median(cpus)), 3), "repeats": repeats})
    return rows


def write_csv(rows, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "bench"))
    parser.add_argument("--models", default=None,
                        help="comma-separated names (default: every shipped model)")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats per bundled volume")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test cases (smoke run)")
    parser.add_argument("--bundled", default=",".join(BUNDLED),
                        help="data_source cases to time (comma-separated; '' for none)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "out"))
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results"),
                        help="folder for the committed copy ('' to skip)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    # Cut in this process so its CPU time is counted (SimpleCRF's leak is harmless in a short run).
    graphcut.set_in_process(True)
    models = args.models.split(",") if args.models else zoo.available(include_benchmark_only=True)
    info = machine()
    print(f"machine: {info}\nmodels: {', '.join(models)}\ndata: {args.data}")

    rows = evaluate(models, args.data, args.device, args.limit)
    bundled = [c for c in args.bundled.split(",") if c]
    timing = time_bundled(models, args.device, args.repeats, bundled)

    print(f"\n{'model':<16} {'mean Dice':>9} {'raw':>6} {'sts_mr':>7} {'sts_ct':>7} {'btp':>6} "
          f"{'s/test vol':>10} {'s/bundled (median)':>19}")
    summary = []
    for name in models:
        mine = [r for r in rows if r["model"] == name]
        by = {g: np.mean([r["dice"] for r in mine if r["group"] == g]) for g in ("sts_mr", "sts_ct", "btp")}
        bundled = [r["median_s"] for r in timing if r["model"] == name] or [float("nan")]
        summary.append({"model": name, "mean_dice": round(float(np.mean([r["dice"] for r in mine])), 4),
                        "mean_dice_raw": round(float(np.mean([r["dice_raw"] for r in mine])), 4),
                        **{f"mean_dice_{g}": round(float(v), 4) for g, v in by.items()},
                        "median_s_test_volume": round(float(np.median([r["seconds"] for r in mine])), 3),
                        "max_median_s_bundled": round(float(max(bundled)), 3),
                        "max_median_cpu_s_bundled": round(float(max(
                            [r["median_cpu_s"] for r in timing if r["model"] == name] or [np.nan])), 3),
                        "median_cpu_s_test_volume": round(float(np.median([r["cpu_seconds"] for r in mine])), 3),
                        "cases": len(mine), "machine": info})
        s = summary[-1]
        print(f"{name:<16} {s['mean_dice']:>9.4f} {s['mean_dice_raw']:>6.3f} {by['sts_mr']:>7.3f} "
              f"{by['sts_ct']:>7.3f} {by['btp']:>6.3f} {s['median_s_test_volume']:>10.2f} "
              f"{s['max_median_s_bundled']:>19.2f}")
    print("\nseconds per bundled volume (wall median / p95 over repeats, and CPU median; model loaded):")
    for r in timing:
        print(f"  {r['model']:<16} {r['case']:<14} {r['size_zyx']:>12}  {r['median_s']:.2f} / "
              f"{r['p95_s']:.2f}   CPU {r['median_cpu_s']:.2f}")

    out = Path(args.out)
    files = {"segmentation.csv": rows, "segmentation_summary.csv": summary,
             "segmentation_timing.csv": timing}
    for fname, data in files.items():
        write_csv(data, out / fname)
        if args.results:
            Path(args.results).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / fname, Path(args.results) / fname)
    print(f"\nwrote {', '.join(files)} to {out}" + (f" and {args.results}" if args.results else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
