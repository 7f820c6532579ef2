"""What the annotation session's bookkeeping costs per action: log line, checksum, undo, autosave.

    .venv/bin/python benchmarks/session_costs.py [--clicks 20] [--big]

Per volume (the bundled lits117 128^3 CT and sts002 CT; --big adds a synthetic 300x512x512 label),
the median over `--clicks` geodesic-nearest axial clicks of:
  click_ms       the whole synchronous click (plan, engine, apply, log, checksum, Dice)
  engine_ms      the engine alone
  log_ms         writing + fsync of the JSON line
  undo_kb        compressed undo step
  snapshot_ms    one autosave snapshot (label copy, zlib, edits, state.json), on the writer thread
  open_ms        session start with log + autosave (image fingerprint, sidecars, header)
  restore_ms     find_recoverable + restore from snapshot + replay of a 5-action tail
The CSV goes to benchmarks/results/session_costs.csv.
"""
from __future__ import annotations

import argparse
import csv
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _cases(big: bool):
    from app.core.volume import Volume
    from app.core.volume_io import read_label, read_volume

    for name in ("lits117_ct", "sts002_ct"):
        volume = read_volume(REPO / "data_source" / f"{name}.nii.gz")
        yield name, volume, read_label(REPO / "data_source" / f"{name}_label.nii.gz", volume).array
    if big:
        rng = np.random.default_rng(0)
        z, y, x = np.ogrid[:300, :512, :512]
        ref = (((z - 150) / 90.0) ** 2 + ((y - 256) / 150.0) ** 2 + ((x - 256) / 170.0) ** 2 <= 1).astype(np.uint8)
        image = (ref * 100 + rng.normal(0, 20, ref.shape)).astype(np.int16)
        yield "synthetic_300x512x512", Volume(image, spacing=(0.8, 0.8, 1.5)), ref


def measure(name, volume, ref, clicks, workdir):
    from app.core.autosave import find_recoverable, restore
    from app.core.session import AnnotationSession

    proposal = ref.copy()
    proposal[::4] = 0
    t = time.perf_counter()
    s = AnnotationSession(volume, label=proposal, reference=ref, engine="geodesic-nearest",
                          log_path=workdir / f"{name}.jsonl", autosave_dir=workdir / "autosave")
    open_ms = (time.perf_counter() - t) * 1e3
    s.autosave.idle_s = s.autosave.max_delay_s = 1e6       # snapshots measured explicitly below
    rng = np.random.default_rng(0)
    zs, ys, xs = np.nonzero((ref > 0)[::4] & (proposal[::4] == 0))
    rows = []
    for i in range(clicks):
        j = rng.integers(len(zs))
        t = time.perf_counter()
        r = s.click(0, int(zs[j]) * 4, (int(ys[j]), int(xs[j])), True)
        click_ms = (time.perf_counter() - t) * 1e3
        edit = s.history.undo_stack[-1]
        rows.append((click_ms, r.entry["compute_ms"], s.last_log_write_ms, edit.nbytes / 1024))
    snaps = []
    for _ in range(3):
        s.autosave.write_snapshot()
        snaps.append(s.autosave.last_write_ms)
    for i in range(5):
        s.brush(0, int(zs[i]) * 4, [(int(ys[i]), int(xs[i]))], 3.0)
    s.log.close()                                           # as after a crash: no final snapshot
    s.autosave._closing = True
    t = time.perf_counter()
    restored = restore(find_recoverable(workdir / "autosave")[0], volume=volume)
    restore_ms = (time.perf_counter() - t) * 1e3
    assert np.array_equal(restored.label, s.label)
    restored.close()
    med = [statistics.median(c) for c in zip(*rows)]
    return {"case": name, "shape": "x".join(map(str, volume.shape)), "clicks": clicks,
            "click_ms": round(med[0], 2), "engine_ms": round(med[1], 2), "log_ms": round(med[2], 2),
            "undo_kb": round(med[3], 2), "snapshot_ms": round(statistics.median(snaps), 1),
            "open_ms": round(open_ms, 1), "restore_ms": round(restore_ms, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--big", action="store_true", help="add a synthetic 300x512x512 volume")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "session_costs.csv"))
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, volume, ref in _cases(args.big):
            results.append(measure(name, volume, ref, args.clicks, Path(tmp)))
            print(results[-1], flush=True)
    keys = list(results[0])
    print("\n" + " | ".join(keys))
    for row in results:
        print(" | ".join(str(row[k]) for k in keys))
    print(f"\n({platform.processor() or platform.machine()}, {platform.python_version()}; medians)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=keys)
        writer.writeheader()
        writer.writerows(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
