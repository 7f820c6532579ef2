"""First click on a clear object: how much of a bright or dark disk one click takes, per weights file.

A check beside the click benchmark (whose tumours are mostly low-contrast): a correction net can
gain benchmark points by drawing less around a first click, which a clinician pays for on every
obvious lesion (session 4's iteration 3 did). For each file and engine: an empty 128 x 128 slice of
noise (SD 20) holding one disk (radius 8, 13, 20, 28 px; 150 grey levels brighter or darker), one
foreground click at its centre, 3 noise seeds; the share of the disk taken and the false area
(pixels outside the disk, as a share of the disk). `combined` as shipped adds the geodesic region of
a clear object to a first click (refine/clear_object.py), so `combined-no-clear` is the row that
compares weights files.

    .venv/bin/python benchmarks/first_click_disks.py --weights models/weights/correction_net.pt OTHER.pt \
        --out benchmarks/out/first_click_disks.csv
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RADII = (8, 13, 20, 28)


def disk_scene(radius: int, bright: bool, seed: int, size: int = 128):
    yy, xx = np.mgrid[:size, :size]
    gt = (yy - size // 2) ** 2 + (xx - size // 2) ** 2 <= radius * radius
    rng = np.random.default_rng(seed)
    image = 300 + (150 if bright else -150) * gt + rng.normal(0, 20, gt.shape)
    return image.astype(np.float32), gt


def measure(engine) -> dict:
    from app.core.refine import RefineRequest

    out = {}
    for radius in RADII:
        taken, false = [], []
        for seed in range(3):
            for bright in (True, False):
                image, gt = disk_scene(radius, bright, seed)
                c = (gt.shape[0] // 2, gt.shape[1] // 2)
                request = RefineRequest(image=image, mask=np.zeros(gt.shape, np.uint8),
                                        fg_clicks=[c], newest=c, newest_is_fg=True)
                mask = engine.refine(request).mask > 0
                taken.append((mask & gt).sum() / gt.sum())
                false.append((mask & ~gt).sum() / gt.sum())
        out[radius] = (float(np.mean(taken)), float(np.mean(false)))
    return out


def main(argv=None) -> int:
    from app.cli.bench_clicks import write_csv
    from app.core.refine import CombinedRefiner, CorrectionNetRefiner

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+",
                        default=[str(ROOT / "models" / "weights" / "correction_net.pt")])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "first_click_disks.csv"))
    args = parser.parse_args(argv)
    rows = []
    print(f"{'weights':40s} {'engine':18s} " + " ".join(f"r{r:<2d} taken/false" for r in RADII))
    for weights in args.weights:
        for name, engine in (("combined", CombinedRefiner(weights=weights)),
                             # what the network's first click gives the cut without the
                             # clear-object rule (refine/clear_object.py): the weights' own answer
                             ("combined-no-clear", CombinedRefiner(weights=weights,
                                                                   clear_contrast=None)),
                             ("correction-net", CorrectionNetRefiner(weights=weights))):
            result = measure(engine)
            print(f"{Path(weights).name:40s} {name:18s} "
                  + " ".join(f"   {t:.2f}/{f:.2f}  " for t, f in result.values()))
            for radius, (t, f) in result.items():
                rows.append({"weights": weights, "engine": name, "radius": radius,
                             "taken": round(t, 3), "false": round(f, 3)})
    write_csv(Path(args.out), list(rows[0]), rows)
    print(f"rows: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
