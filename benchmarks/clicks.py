"""Robot-user click benchmark (PROTOCOLS.md section 1): every engine, side by side.

Runs app/cli/bench_clicks.py with all engines on the same slices, both clickers, from an empty
mask and (when a model or --init-dir is available) from the model's initial mask; prints the
table, writes per-slice rows to benchmarks/out/clicks_rows.csv and the summary to
benchmarks/out/clicks_summary.csv (both git-ignored: a partial or exploratory run must not overwrite
the committed benchmarks/results/clicks.csv, which joins the summaries BENCHMARKS.md reports).
--mode 3d runs the 3D robot (it picks the slice too).

    python benchmarks/clicks.py --data ../shared/data/bench [--every-k 8] [--start zero,init]
    python benchmarks/clicks.py --jobs 2          # engines split over 2 processes, one per core

With --jobs N the engines are dealt round-robin (in the order given) to N child processes, each
running the same slices, starts and clickers on one core; their row and summary files are then
concatenated (every engine's numbers come from exactly one process, so nothing is re-aggregated).
The initial masks are computed once, by the first child, before the others start (shared cache).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINES = "none,geodesic-nearest,geodesic-crf,grabcut,correction-net,combined"


def _parser():
    sys.path.insert(0, str(ROOT))
    from app.cli import bench_clicks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench_clicks.add_arguments(parser)
    parser.add_argument("--jobs", type=int, default=1, help="child processes (engines split)")
    parser.set_defaults(data=str(ROOT / ".." / "shared" / "data" / "bench"), engine=ENGINES,
                        start="zero,init", clicker="exact,noisy",
                        out=str(ROOT / "benchmarks" / "out" / "clicks_rows.csv"),
                        summary_out=str(ROOT / "benchmarks" / "out" / "clicks_summary.csv"))
    return parser, bench_clicks


def _concatenate(parts: list[Path], target: Path) -> None:
    lines = []
    for i, part in enumerate(parts):
        text = part.read_text(encoding="utf-8").splitlines()
        lines.extend(text if i == 0 else text[1:])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _run_split(args, argv: list[str]) -> int:
    engines = [e for e in args.engine.split(",") if e]
    groups = [g for g in (engines[i::args.jobs] for i in range(args.jobs)) if g]
    rest = _without(argv, ("--jobs", "--engine", "--out", "--summary-out"))
    scratch = Path(args.out).parent
    me = [sys.executable, str(Path(__file__).resolve())]
    if "init" in args.start.split(","):
        # Fill the initial-mask cache first, so the children do not compute it twice at once.
        warm = [*me, *_without(rest, ("--clicker", "--max-clicks")), "--engine", "none",
                "--clicker", "exact", "--max-clicks", "1", "--out", str(scratch / "clicks_warm.csv"),
                "--summary-out", str(scratch / "clicks_warm_summary.csv")]
        subprocess.run(warm, check=True, stdout=subprocess.DEVNULL)
    parts = [(scratch / f"clicks_rows.part{i}.csv", scratch / f"clicks_summary.part{i}.csv", group)
             for i, group in enumerate(groups)]
    children = [subprocess.Popen([*me, *rest, "--engine", ",".join(group), "--out", str(rows),
                                  "--summary-out", str(summary)])
                for rows, summary, group in parts]
    codes = [child.wait() for child in children]
    if any(codes):
        print(f"error: a child run failed (exit codes {codes})", file=sys.stderr)
        return 1
    _concatenate([rows for rows, _, _ in parts], Path(args.out))
    _concatenate([summary for _, summary, _ in parts], Path(args.summary_out))
    print(Path(args.summary_out).read_text(encoding="utf-8"))
    return 0


def _without(argv: list[str], names: tuple[str, ...]) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        if item in names:
            skip = True
            continue
        if any(item.startswith(n + "=") for n in names):
            continue
        out.append(item)
    return out


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, bench_clicks = _parser()
    args = parser.parse_args(argv)
    if args.jobs > 1:
        return _run_split(args, argv)
    return bench_clicks.run(args)


if __name__ == "__main__":      # the guard matters: the graph-cut worker re-imports this module
    raise SystemExit(main())
