"""What one click fixes: per-click error accounting of an engine under the robot of PROTOCOLS §1.

For every click of the robot sessions (2D, exact clicker, from the U-Net proposal) it records the
error (pixels where the label differs from the reference) before and after the click: inside the
32-px window around the click (the patch a perfect local engine, benchmarks/clicks_oracle.py
`window-32`, would clear), in the connected error region the click landed in (what the
`component` oracle clears), outside the window, and the new errors the click made. Grouped by the
Dice before the click, it says whether clicks are short of the oracles because they fix too little
where they land, or because they break things elsewhere; for an engine with a correction net, also
on how much of the clicked region the net's own output was right (the engine's ceiling there).

    .venv/bin/python benchmarks/clicks_per_click.py --engine combined --out benchmarks/out/per_click.csv
    .venv/bin/python benchmarks/clicks_per_click.py --split Ts --every-k 8     # the test slices

Default: the development cases of benchmarks/clicks_dev.py (imagesTr validation cases, every 4th
foreground slice); the oracle figures in BENCHMARKS.md are on the test slices (--split Ts).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.cli import bench_clicks as bench  # noqa: E402

WINDOW = 32
BANDS = ((0.0, 0.6), (0.6, 0.8), (0.8, 0.9), (0.0, 0.9))
COUNTS = ("win_before", "win_after", "out_before", "out_after", "comp_before", "comp_after",
          "new_errors", "comp_in_box", "comp_net_right")


def clicked_region(before: np.ndarray, gt: np.ndarray, y: int, x: int) -> np.ndarray:
    """The connected error region the click landed in."""
    labels, _ = ndimage.label(before != gt)
    return labels == labels[y, x] if labels[y, x] else np.zeros(gt.shape, bool)


def click_account(before: np.ndarray, after: np.ndarray, gt: np.ndarray, y: int, x: int,
                  comp: np.ndarray) -> dict:
    """Error pixel counts around one click (before -> after); comp: clicked_region."""
    err_b, err_a = before != gt, after != gt
    win = np.zeros(gt.shape, bool)
    win[max(0, y - WINDOW):y + WINDOW + 1, max(0, x - WINDOW):x + WINDOW + 1] = True
    return {"win_before": int((err_b & win).sum()), "win_after": int((err_a & win).sum()),
            "out_before": int((err_b & ~win).sum()), "out_after": int((err_a & ~win).sum()),
            "comp_before": int(comp.sum()), "comp_after": int((err_a & comp).sum()),
            "new_errors": int((err_a & ~err_b).sum())}


class Recording:
    """Wraps an engine and keeps every (request, result) pair of a session."""

    def __init__(self, engine):
        self.engine, self.calls = engine, []

    def refine(self, request):
        result = self.engine.refine(request)
        self.calls.append((request, result))
        return result


def net_account(engine, request, gt: np.ndarray, comp: np.ndarray) -> dict:
    """For an engine with a correction net: how much of the clicked error region lies in the net's
    box, and on how much of it the net's own thresholded output is already right (what the engine
    could clear there if it took the net's word everywhere in that region)."""
    from app.core.refine.base import check_request, widest_side
    from app.core.refine.correction_net import network_probability

    checked = check_request(request)
    (y0, y1, x0, x1), prob, _ = network_probability(
        checked, engine.weights, engine.patch, engine.max_zoom, widest_side(checked, request.options))
    in_box = np.zeros(gt.shape, bool)
    in_box[y0:y1, x0:x1] = True
    net = np.zeros(gt.shape, bool)
    net[y0:y1, x0:x1] = prob > 0.5
    return {"comp_in_box": int((comp & in_box).sum()),
            "comp_net_right": int((comp & in_box & (net == gt)).sum())}


def session_rows(engine, case, z, image, gt, start, prior, spacing) -> list[dict]:
    from app.core.robot_user import dice, run_session

    recording = Recording(engine)
    run_session(recording, image, gt, start, prior=prior, spacing=spacing)
    rows = []
    for k, (request, result) in enumerate(recording.calls):
        before, after = np.asarray(request.mask) > 0, result.mask > 0
        y, x = request.newest
        row = {"case": case, "slice": z, "click": k + 1, "fg": int(bool(request.newest_is_fg)),
               "dice_before": round(dice(before, gt), 4), "dice_after": round(dice(after, gt), 4)}
        comp = clicked_region(before, gt, y, x)
        row.update(click_account(before, after, gt, y, x, comp))
        if hasattr(engine, "max_zoom"):
            row.update(net_account(engine, request, gt, comp))
        rows.append(row)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for lo, hi in BANDS:
        sel = [r for r in rows if lo <= r["dice_before"] < hi]
        if not sel:
            continue
        t = {key: float(sum(r[key] for r in sel)) for key in COUNTS if key in sel[0]}
        gain = np.array([r["dice_after"] - r["dice_before"] for r in sel])
        out.append({
            "dice_before": f"[{lo:.1f}, {hi:.1f})", "clicks": len(sel),
            "mean_dice_gain": round(float(gain.mean()), 4),
            "clicks_making_it_worse": round(float((gain < -1e-3).mean()), 3),
            "window_error_cleared": round(1 - t["win_after"] / max(t["win_before"], 1), 3),
            "clicked_region_cleared": round(1 - t["comp_after"] / max(t["comp_before"], 1), 3),
            "new_errors_per_window_error": round(t["new_errors"] / max(t["win_before"], 1), 3),
            **({"net_right_on_clicked_region_in_box": round(
                t["comp_net_right"] / max(t["comp_in_box"], 1), 3)}
               if "comp_net_right" in sel[0] else {}),
            "share_of_error_in_window": round(
                t["win_before"] / max(t["win_before"] + t["out_before"], 1), 3),
        })
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / ".." / "shared" / "data" / "bench"))
    parser.add_argument("--split", choices=("Tr", "Ts"), default="Tr",
                        help="Tr: the development cases (default); Ts: every test case")
    parser.add_argument("--engine", default="combined")
    parser.add_argument("--every-k", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "per_click.csv"))
    args = parser.parse_args(argv)
    data = Path(args.data)
    if args.split == "Tr":
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from clicks_dev import development_cases

        cases = development_cases()
    else:
        cases = [c for c, _, _ in bench.list_cases(data, "Ts", None)]
    engine = bench.make_refiner(args.engine)
    cache = argparse.Namespace(init_dir=None, model=None,
                               init_cache=str(ROOT / "benchmarks" / "out" / "init_cache"))
    print(bench.machine_line())
    rows = []
    for case in cases:
        volume, label = bench.load_case(data / f"images{args.split}" / f"{case}_0000.nii.gz",
                                        data / f"labels{args.split}" / f"{case}.nii.gz")
        start, prior = bench.initial_masks("init", case, volume, cache)
        spacing = (volume.spacing[1], volume.spacing[0])
        for z in bench.evaluation_slices(label, args.every_k):
            rows += session_rows(engine, case, z, volume.array[z], label[z] > 0, start[z],
                                 None if prior is None else prior[z], spacing)
        print(f"  {case}: done", flush=True)
    table = summarise(rows)
    print(f"{args.engine}, from the U-Net proposal, exact clicker, {args.split}: per click, by Dice "
          f"before it (window = {2 * WINDOW}-px square around the click)")
    for line in table:
        print("  " + ", ".join(f"{k} {v}" for k, v in line.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"per-click rows: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
