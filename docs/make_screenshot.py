"""Regenerate docs/screenshot.png: the main window on sts002_ct with its tumour label overlay.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/make_screenshot.py [--case sts002_ct] [--out PATH]

Uses a throw-away results folder, so the user's results/segloop.db is not touched.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="sts002_ct")
    parser.add_argument("--orientation", default="axial", choices=("axial", "coronal", "sagittal"))
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"))
    args = parser.parse_args(argv)

    from PyQt5.QtCore import QEvent, QPointF, Qt
    from PyQt5.QtGui import QMouseEvent
    from PyQt5.QtWidgets import QApplication

    from app.gui.application import build_main_window

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as results:
        window = build_main_window(REPO / "data_source", results)
        window.resize(1280, 800)
        window.show()
        ids = dict(zip((r.name for r in window.store.list_cases()), window.case_list.case_ids()))
        if not window.open_case_id(ids[args.case]):
            print(f"error: {window.last_error}", file=sys.stderr)
            return 2
        view = window.slice_view
        view.set_orientation(args.orientation)
        app.processEvents()
        # Hover over the label's centre so the status bar shows the voxel readout.
        target = view.mapFromScene(view.voxel_to_scene(*view.state.cursor))
        viewport = view.viewport()
        app.sendEvent(viewport, QMouseEvent(QEvent.MouseMove, QPointF(target), QPointF(viewport.mapToGlobal(target)),
                                            Qt.NoButton, Qt.NoButton, Qt.NoModifier))
        app.processEvents()
        window.grab().save(args.out)
        window.store.close()
        window.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
