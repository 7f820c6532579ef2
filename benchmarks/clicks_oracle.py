"""How far a perfect local engine gets under the robot of PROTOCOLS §1: a bound, not an engine.

Two oracles that know the reference answer every click of the same robot, from the same start
masks (the shipped U-Net's proposal, cached as bench-clicks caches it) on the same slices as
benchmarks/clicks.py (2D, exact clicker, every k-th foreground slice of imagesTs):
- `component`: corrects the whole connected error region the click lands in (a fg click fills the
  missed piece it is in, a bg click removes the false piece);
- `window-R`: corrects every error within R pixels of the click (a (2R)-pixel patch done perfectly).
If even these needed more than 3 clicks the issue's target would be out of reach of any click engine;
they show how far our engines are from what the data allows.

    .venv/bin/python benchmarks/clicks_oracle.py --every-k 8 --out benchmarks/out/clicks_oracle.csv
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Oracle:
    """A Refiner look-alike for robot_user.run_session that reads the reference (self.gt)."""

    def __init__(self, kind: str, radius: int = 32):
        self.kind, self.radius, self.gt = kind, radius, None

    def refine(self, request):
        mask, gt = np.asarray(request.mask, bool).copy(), self.gt
        y, x = request.newest
        if self.kind == "component":
            error = (gt & ~mask) if request.newest_is_fg else (~gt & mask)
            labels, _ = ndimage.label(error)
            if labels[y, x]:
                mask[labels == labels[y, x]] = request.newest_is_fg
        else:
            r = self.radius
            y0, y1, x0, x1 = max(y - r, 0), y + r + 1, max(x - r, 0), x + r + 1
            mask[y0:y1, x0:x1] = gt[y0:y1, x0:x1]
        return SimpleNamespace(mask=mask.astype(np.uint8))


def main(argv=None) -> int:
    from app.cli import bench_clicks as bench
    from app.cli.bench_clicks import write_csv
    from app.core.robot_user import run_session

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / ".." / "shared" / "data" / "bench"))
    parser.add_argument("--every-k", type=int, default=8)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "clicks_oracle.csv"))
    args = parser.parse_args(argv)
    cache = argparse.Namespace(init_dir=None, model=None,
                               init_cache=str(ROOT / "benchmarks" / "out" / "init_cache"))
    oracles = {"component": Oracle("component"), "window-32": Oracle("window", 32),
               "window-16": Oracle("window", 16)}
    rows = []
    for case, image_path, label_path in bench.list_cases(Path(args.data), "Ts", None):
        volume, label = bench.load_case(image_path, label_path)
        start, _ = bench.initial_masks("init", case, volume, cache)
        for z in bench.evaluation_slices(label, args.every_k):
            for name, oracle in oracles.items():
                oracle.gt = label[z]
                session = run_session(oracle, volume.array[z], label[z], start[z], stop_at=None)
                rows.append({"case": case, "slice": z, "oracle": name,
                             "noc90": session.noc(0.90), "dice_1": round(session.dice_after(1), 4),
                             "dice_5": round(session.dice_after(5), 4)})
    print(f"{'oracle':12s} {'slices':>6s} {'NoC@90':>7s} {'Dice@1':>7s} {'Dice@5':>7s} "
          f"{'NoC@90 sarcoma':>15s} {'brain':>6s}")
    for name in oracles:
        mine = [r for r in rows if r["oracle"] == name]
        noc = np.array([r["noc90"] for r in mine], float)
        brain = np.array([r["case"].startswith("btp") for r in mine])
        print(f"{name:12s} {len(mine):6d} {noc.mean():7.2f} "
              f"{np.mean([r['dice_1'] for r in mine]):7.3f} {np.mean([r['dice_5'] for r in mine]):7.3f} "
              f"{noc[~brain].mean():15.2f} {noc[brain].mean() if brain.any() else float('nan'):6.2f}")
    write_csv(Path(args.out), list(rows[0]), rows)
    print(f"rows: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
