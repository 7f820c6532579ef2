"""Where the clicks go: the robot-user rows of benchmarks/clicks.py split into groups of slices.

    python benchmarks/clicks_breakdown.py ROWS.csv [--data ../shared/data/bench]
        [--engine combined --start init --clicker exact] [--out CSV]

Groups: data source (case prefix), the initial mask's Dice, the reference's area in the slice,
and -- read from DIR/labelsTs -- how many separate pieces the reference has in that slice (a
reference drawn as many specks cannot be matched to 90 % by any region-growing click tool).
Each row: group, slices, mean NoC@85 / NoC@90, share of slices that never reach 90 %, mean Dice
after 0 / 1 / 5 clicks.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MAX_CLICKS = 20


def _bands(value: float, edges: list[float], names: list[str]) -> str:
    for edge, name in zip(edges, names):
        if value < edge:
            return name
    return names[-1]


def pieces_per_slice(data: Path, cases: set[str]) -> dict[tuple[str, int], int]:
    """(case, slice) -> number of 8-connected pieces of the reference in that axial slice."""
    import SimpleITK as sitk
    from scipy import ndimage

    out = {}
    for case in sorted(cases):
        path = data / "labelsTs" / f"{case}.nii.gz"
        if not path.exists():
            continue
        label = sitk.GetArrayFromImage(sitk.ReadImage(str(path))) > 0
        for z in range(label.shape[0]):
            if label[z].any():
                out[(case, z)] = int(ndimage.label(label[z], structure=np.ones((3, 3)))[1])
    return out


def group_rows(rows: list[dict], pieces: dict | None) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups["all"].append(r)
        groups["source " + r["case"][:3]].append(r)
        groups["initial Dice " + _bands(float(r["dice_0"]), [0.5, 0.8], ["< 0.5", "0.5-0.8", ">= 0.8"])
               ].append(r)
        groups["reference area " + _bands(float(r["fg_pixels"]), [1000, 5000],
                                          ["< 1000 px", "1000-5000 px", ">= 5000 px"])].append(r)
        if pieces is not None and (r["case"], int(r["slice"])) in pieces:
            n = pieces[(r["case"], int(r["slice"]))]
            groups["reference pieces " + ("1" if n == 1 else "2-3" if n <= 3 else ">= 4")].append(r)
    return groups


def summarise(groups: dict[str, list[dict]]) -> list[dict]:
    table = []
    for name in sorted(groups, key=lambda g: (g != "all", g)):
        rows = groups[name]
        noc90 = np.array([float(r["noc90"]) for r in rows])
        table.append({
            "group": name, "slices": len(rows),
            "noc85": round(float(np.mean([float(r["noc85"]) for r in rows])), 2),
            "noc90": round(float(noc90.mean()), 2),
            "never_90": round(float(np.mean(noc90 >= MAX_CLICKS)), 3),
            **{f"dice_{k}": round(float(np.mean([float(r[f"dice_{k}"]) for r in rows])), 3)
               for k in (0, 1, 5)}})
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path, help="per-slice CSV written by benchmarks/clicks.py")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "bench",
                        help="dataset with labelsTs/ (for the pieces-per-slice groups)")
    parser.add_argument("--engine", default="combined")
    parser.add_argument("--start", default="init")
    parser.add_argument("--clicker", default="exact")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    with args.rows.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["engine"] == args.engine
                and r["start"] == args.start and r["clicker"] == args.clicker
                and r.get("mode", "2d") == "2d"]
    if not rows:
        print(f"no 2D rows for engine={args.engine} start={args.start} clicker={args.clicker} "
              f"in {args.rows}", file=sys.stderr)
        return 1
    pieces = (pieces_per_slice(args.data, {r["case"] for r in rows})
              if (args.data / "labelsTs").is_dir() else None)
    table = summarise(group_rows(rows, pieces))
    print(f"{args.engine}, start {args.start}, {args.clicker} clicker, {len(rows)} slices")
    print(f"{'group':32s} {'slices':>6s} {'NoC@85':>7s} {'NoC@90':>7s} {'never90':>8s} "
          f"{'Dice@0':>7s} {'@1':>6s} {'@5':>6s}")
    for t in table:
        print(f"{t['group']:32s} {t['slices']:6d} {t['noc85']:7.2f} {t['noc90']:7.2f} "
              f"{t['never_90']:8.3f} {t['dice_0']:7.3f} {t['dice_1']:6.3f} {t['dice_5']:6.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
