"""Seconds per volume of batch pre-labelling (the job behind `prelabel` and Batch > Pre-label cases).

    python benchmarks/prelabel.py [--data ../shared/data/bench/imagesTs] [--bundled data_source]
                                  [--models unet,...] [--device cpu] [--threads N]

Runs app.core.batch.prelabel_job over each folder with each shipped model (files written to a
temporary folder, nothing skipped) and reports, per model and folder, the seconds per volume
(read + segment + write, the model already loaded: median and p95) and the total wall time of the
batch. Prints a table; writes benchmarks/results/prelabel.csv (summary) and
benchmarks/results/prelabel_volumes.csv (one row per volume).
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from app.core.batch import prelabel_job  # noqa: E402
from app.core.case_discovery import discover_cases  # noqa: E402
from app.core.jobs import run_job  # noqa: E402
from app.core.segmentation import available_models, load_model  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
SUMMARY_COLUMNS = ("model", "dataset", "volumes", "failed", "median_s", "p95_s", "mean_s", "total_s",
                   "device", "torch_threads", "load_avg_start", "load_avg_end", "machine")
VOLUME_COLUMNS = ("model", "dataset", "case", "size_xyz", "seconds")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, {platform.python_implementation()} {platform.python_version()}"


def load_avg() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def write_csv(path: Path, columns, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def size_of(path: Path) -> str:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return "x".join(map(str, reader.GetSize()))


def bench(model: str, dataset: str, folder: Path, device: str):
    cases = discover_cases(folder)
    load_model(model, device)  # loading is paid once per session, not per volume
    with tempfile.TemporaryDirectory(prefix="prelabel-bench-") as out:
        load_start = load_avg()
        start = time.perf_counter()
        summary = run_job(prelabel_job(cases, model, out, skip_existing=False, device=device))
        total = time.perf_counter() - start
    seconds = np.array([summary.seconds[c] for c in summary.done])
    sizes = {c.name: size_of(c.image_path) for c in cases if c.image_path.is_file()}
    volumes = [{"model": model, "dataset": dataset, "case": c, "size_xyz": sizes.get(c, ""),
                "seconds": round(summary.seconds[c], 3)} for c in summary.done]
    row = {"model": model, "dataset": dataset, "volumes": len(summary.done), "failed": len(summary.failed),
           "median_s": round(float(np.median(seconds)), 3) if len(seconds) else "",
           "p95_s": round(float(np.percentile(seconds, 95)), 3) if len(seconds) else "",
           "mean_s": round(float(seconds.mean()), 3) if len(seconds) else "",
           "total_s": round(total, 2), "device": device, "torch_threads": torch.get_num_threads(),
           "load_avg_start": load_start, "load_avg_end": load_avg(), "machine": machine()}
    for case, reason in summary.failed:
        print(f"  {model} {dataset}: failed {case}: {reason}", flush=True)
    return row, volumes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "bench" / "imagesTs"),
                        help="test images (default: ../shared/data/bench/imagesTs)")
    parser.add_argument("--bundled", default=str(REPO / "data_source"), help="bundled cases folder")
    parser.add_argument("--models", default=None, help="comma-separated (default: every shipped model)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default=str(RESULTS), help="folder for the CSVs (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    models = args.models.split(",") if args.models else available_models()
    folders = [("bench_imagesTs", Path(args.data)), ("data_source", Path(args.bundled))]
    rows, volumes = [], []
    for model in models:
        for dataset, folder in folders:
            if not folder.is_dir():
                print(f"skipping {dataset}: {folder} not found", file=sys.stderr)
                continue
            print(f"{model} on {dataset} ({folder}) ...", flush=True)
            row, per_volume = bench(model, dataset, folder, args.device)
            rows.append(row)
            volumes += per_volume
    print(f"\n{machine()}; device {args.device}, torch threads {torch.get_num_threads()}")
    print(f"{'model':<14} {'dataset':<15} {'vols':>4} {'fail':>4} {'median s':>9} {'p95 s':>7} "
          f"{'total s':>8} {'load':>9}")
    for r in rows:
        print(f"{r['model']:<14} {r['dataset']:<15} {r['volumes']:>4} {r['failed']:>4} "
              f"{r['median_s']:>9} {r['p95_s']:>7} {r['total_s']:>8} "
              f"{r['load_avg_start']:>4}-{r['load_avg_end']:<4}")
    out = Path(args.out)
    write_csv(out / "prelabel.csv", SUMMARY_COLUMNS, rows)
    write_csv(out / "prelabel_volumes.csv", VOLUME_COLUMNS, volumes)
    print(f"wrote {out / 'prelabel.csv'} and {out / 'prelabel_volumes.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
