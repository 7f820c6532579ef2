"""How long opening a bundled case takes, up to its first slice on screen (target: < 1 s).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/open_case.py [--repeats 7] [--data data_source]

Per case and repeat, two timings:
  read   app.core.case_loader.load_case: image + label read from disk, checked, grid compared
  open   the GUI path a user triggers by selecting the case in the list: read, view state, windowing,
         overlay, and a synchronous paint of the slice view (QWidget.grab)
Cases are opened in turn, so every open is a real switch from another case. Medians are reported;
the CSV goes to benchmarks/results/open_case.csv.
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
TARGET_S = 1.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data", default=str(REPO / "data_source"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "open_case.csv"))
    args = parser.parse_args(argv)

    from PyQt5.QtWidgets import QApplication

    from app.core.case_loader import load_case
    from app.gui.application import build_main_window

    app = QApplication.instance() or QApplication(sys.argv[:1])
    rows = []
    with tempfile.TemporaryDirectory() as results:
        window = build_main_window(args.data, results)
        window.resize(1280, 800)
        window.show()
        app.processEvents()
        records = window.store.list_cases()
        reads = {r.id: [] for r in records}
        opens = {r.id: [] for r in records}
        for _ in range(args.repeats):
            for record in records:
                start = time.perf_counter()
                load_case(record.image_path, record.label_path, record.reference_label_path)
                reads[record.id].append(time.perf_counter() - start)
            for record in records:
                start = time.perf_counter()
                ok = window.open_case_id(record.id)
                window.slice_view.grab()
                opens[record.id].append(time.perf_counter() - start)
                if not ok:
                    raise SystemExit(f"{record.name}: {window.last_error}")
        for record in records:
            window.open_case_id(record.id)
            image = window.case.image
            rows.append({
                "case": record.name,
                "size_xyz": "x".join(map(str, image.size_xyz)),
                "spacing_mm": "x".join(f"{s:.3g}" for s in image.spacing),
                "repeats": args.repeats,
                "read_median_s": round(statistics.median(reads[record.id]), 4),
                "open_median_s": round(statistics.median(opens[record.id]), 4),
                "open_max_s": round(max(opens[record.id]), 4),
                "target_s": TARGET_S,
                "meets_target": statistics.median(opens[record.id]) < TARGET_S,
            })
        window.store.close()
        window.close()

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"open a bundled case to its first visible slice; median of {args.repeats}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Qt platform "
          f"{os.environ['QT_QPA_PLATFORM']}")
    print(f"{'case':<16}{'size (x×y×z)':>16}{'read s':>10}{'open s':>10}{'max s':>9}  < {TARGET_S:g} s")
    for r in rows:
        print(f"{r['case']:<16}{r['size_xyz']:>16}{r['read_median_s']:>10.3f}{r['open_median_s']:>10.3f}"
              f"{r['open_max_s']:>9.3f}  {'yes' if r['meets_target'] else 'NO'}")
    print(f"wrote {out}")
    return 0 if all(r["meets_target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
