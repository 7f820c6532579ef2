"""Robot-user click benchmark (PROTOCOLS.md section 1, 2D mode): every engine, side by side.

Runs app/cli/bench_clicks.py with all engines on the same slices, both clickers, from an empty
mask and (when a model or --init-dir is available) from the model's initial mask; prints the
table, writes per-slice rows to benchmarks/out/clicks_rows.csv (git-ignored) and the summary to
benchmarks/results/clicks.csv (committed).

    python benchmarks/clicks.py --data ../shared/data/bench [--every-k 8] [--start zero,init]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINES = "none,geodesic-nearest,geodesic-crf,grabcut,correction-net,combined"


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    from app.cli import bench_clicks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench_clicks.add_arguments(parser)
    parser.set_defaults(data=str(ROOT / ".." / "shared" / "data" / "bench"), engine=ENGINES,
                        start="zero,init", clicker="exact,noisy",
                        out=str(ROOT / "benchmarks" / "out" / "clicks_rows.csv"),
                        summary_out=str(ROOT / "benchmarks" / "results" / "clicks.csv"))
    args = parser.parse_args(argv)
    return bench_clicks.run(args)


if __name__ == "__main__":      # the guard matters: the graph-cut worker re-imports this module
    raise SystemExit(main())
