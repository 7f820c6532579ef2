"""Regenerate docs/screenshot.png: a case with the network's proposal, its heat map, the reference
outline (cyan) and a few corrective clicks (green / blue seeds), as a user would see it.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/make_screenshot.py [--case sts002_mr] [--model fpsnet-cam]
        [--clicks 4] [--out PATH]

The clicks are a robot user's (app.core.robot_user): each at the centre of the largest error on the
shown slice, sent as real mouse events. Uses a throw-away results folder, so the user's
results/segloop.db is not touched.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _wait(app, condition, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.002)
    return bool(condition())


def _send(app, view, kind, voxel, button) -> None:
    from PyQt5.QtCore import QPointF, Qt
    from PyQt5.QtGui import QMouseEvent

    pos = view.mapFromScene(view.voxel_to_scene(*voxel))
    viewport = view.viewport()
    buttons = Qt.NoButton if kind == QMouseEvent.MouseButtonRelease or button is None else button
    app.sendEvent(viewport, QMouseEvent(kind, QPointF(pos), QPointF(viewport.mapToGlobal(pos)),
                                        button or Qt.NoButton, buttons, Qt.NoModifier))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="sts002_mr")
    parser.add_argument("--model", default="fpsnet-cam", help="falls back to the first installed model")
    parser.add_argument("--clicks", type=int, default=4)
    parser.add_argument("--orientation", default="axial", choices=("axial", "coronal", "sagittal"))
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"))
    args = parser.parse_args(argv)

    from PyQt5.QtCore import QEvent, Qt
    from PyQt5.QtWidgets import QApplication

    from app.core.robot_user import next_click
    from app.gui.application import build_main_window

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as results:
        window = build_main_window(REPO / "data_source", results)
        window.resize(1280, 800)
        window.show()
        ids = {r.name: r.id for r in window.store.list_cases()}
        if not window.open_case_id(ids[args.case]):
            print(f"error: {window.last_error}", file=sys.stderr)
            return 2
        ui, view = window.annotation, window.slice_view
        _wait(app, lambda: bool(ui.model_combo.currentData()), 120)
        ui.model_combo.setCurrentIndex(max(0, ui.model_combo.findData(args.model)))
        if ui.segment() is None or not _wait(app, lambda: not ui.jobs.running, 900) or window.last_error:
            print(f"error: segmentation failed: {window.last_error}", file=sys.stderr)
            return 2
        reference = ui.controller.reference
        z = view.state.slice_index
        clicked = np.zeros(reference[z].shape, bool)
        for _ in range(args.clicks):  # on the axial slice the case opened on
            robot = next_click(reference[z] > 0, view.label[z] > 0, clicked)
            if robot is None:
                break
            clicked[robot.y, robot.x] = True
            count = len(ui.controller.probe.samples)
            button = Qt.LeftButton if robot.foreground else Qt.RightButton
            _send(app, view, QEvent.MouseButtonPress, (z, robot.y, robot.x), button)
            _send(app, view, QEvent.MouseButtonRelease, (z, robot.y, robot.x), button)
            _wait(app, lambda: len(ui.controller.probe.samples) > count, 30)
        view.set_orientation(args.orientation)
        # Hover over the label's centre so the status bar shows the voxel readout.
        ys, xs = np.nonzero(view.label[z]) if view.label[z].any() else ([45], [57])
        _send(app, view, QEvent.MouseMove, (z, int(np.median(ys)), int(np.median(xs))), None)
        window.statusBar().clearMessage()
        app.processEvents()
        window.grab().save(args.out)
        window.close()  # saves the clicks into the throw-away results folder
        window.store.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
