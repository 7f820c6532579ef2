"""The model's doubt about the open case: a per-slice strip (click a bar to go to that slice) and a
voxel heat-map layer (View > Uncertainty map, U), both from one MC-dropout run in the background
(app.core.active_learning.uncertainty_steps).

The profile is per axial slice, so the strip follows the slice view in the axial orientation and
greys out in the others.
"""
from __future__ import annotations

import numpy as np
from PyQt5.QtCore import QRectF, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QPainter, QPen
from PyQt5.QtWidgets import QDockWidget, QWidget

from app.core.jobs import CancelToken
from app.gui.error_dialog import user_message
from app.gui.map_layers import HEAT_LUT, heat_rgba
from app.gui.workers import run_in_background

UNCERTAINTY_LAYER = "uncertainty"
MC_SAMPLES = 8


def normalised(values: np.ndarray) -> np.ndarray:
    """Scaled to [0, 1] by the 99th percentile, so one hot voxel does not wash out the rest."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float32))
    top = float(np.percentile(v, 99)) if v.size else 0.0
    return np.clip(v / top, 0.0, 1.0) if top > 0 else np.zeros_like(v)


class UncertaintyStripWidget(QWidget):
    """One bar per slice, height and colour by uncertainty; the current slice is outlined."""

    sliceClicked = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.profile: np.ndarray | None = None
        self.current = -1
        self.active = True
        self.setMinimumHeight(36)
        self.setToolTip("Model uncertainty per axial slice (MC dropout); click to go to that slice")

    def set_profile(self, profile: np.ndarray | None) -> None:
        self.profile = None if profile is None else normalised(profile)
        self.update()

    def set_current(self, index: int, active: bool = True) -> None:
        self.current, self.active = index, active
        self.update()

    def slice_at(self, x: float) -> int | None:
        if self.profile is None or not len(self.profile) or self.width() <= 0:
            return None
        return int(np.clip(x * len(self.profile) // self.width(), 0, len(self.profile) - 1))

    def mousePressEvent(self, event) -> None:
        index = self.slice_at(event.pos().x())
        if index is not None and self.active:
            self.sliceClicked.emit(index)

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(25, 25, 25))
        if self.profile is None or not len(self.profile):
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(self.rect(), Qt.AlignCenter, "uncertainty: press U to compute it for this case")
            return
        n, w, h = len(self.profile), self.width(), self.height()
        for i, value in enumerate(self.profile):
            colour = QColor(*HEAT_LUT[int(round(value * 255))]) if self.active else QColor(110, 110, 110)
            bar = max(1.0, value * (h - 2))
            painter.fillRect(QRectF(i * w / n, h - bar, max(1.0, w / n), bar), colour)
        if self.active and 0 <= self.current < n:
            painter.setPen(QPen(QColor(255, 255, 255), 2))
            painter.drawRect(QRectF(self.current * w / n, 1, max(2.0, w / n), h - 2))


class UncertaintyView:
    """The heat-map layer, the strip (in a bottom dock) and the background MC-dropout run."""

    def __init__(self, window, watcher):
        self.window = window
        self.strip = UncertaintyStripWidget()
        self.dock = QDockWidget("Slice uncertainty", window)
        self.dock.setObjectName("uncertainty_dock")
        self.dock.setWidget(self.strip)
        window.addDockWidget(Qt.BottomDockWidgetArea, self.dock)
        self.visible = False
        self.result = None
        self._key = None
        self.runner = None
        self.strip.sliceClicked.connect(window.slice_view.set_slice)
        window.slice_view.sliceChanged.connect(self._follow)
        watcher.caseChanged.connect(lambda _case: self._case_changed())

    def build_menus(self, make) -> None:
        view = self.window.menus["view"]
        view.addAction(make("toggle_uncertainty", "Show the &uncertainty map (MC dropout)", self.set_visible, True))
        view.addAction(self.dock.toggleViewAction())

    def _model(self) -> str | None:
        return self.window.annotation.model_combo.currentData() or None

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)
        view = self.window.slice_view
        if not visible:
            view.set_layer_visible(UNCERTAINTY_LAYER, False)
            return
        key = self._current_key()
        if key is not None and key == self._key and self.result is not None:
            if not view.has_layer(UNCERTAINTY_LAYER):
                self._show(self.result)
            view.set_layer_visible(UNCERTAINTY_LAYER, True)
        else:
            self.compute()

    def _current_key(self):
        case = self.window.case
        return None if case is None else (id(case), self._model())

    def compute(self):
        w = self.window
        if w.case is None or self._model() is None:
            w.notify("Open a case (and wait for the model list) to see the model's uncertainty.")
            return None
        if self.runner is not None and self.runner.running:
            return self.runner
        from app.core.active_learning import uncertainty_steps
        from app.core.segmentation import load_model

        case, model_name, key = w.case, self._model(), self._current_key()
        token = CancelToken()

        def job():
            model = load_model(model_name)
            return (yield from uncertainty_steps(case.image, model, MC_SAMPLES, cancel=token))

        def done(result):
            if self._current_key() != key:
                return  # another case or model by now
            self.result, self._key = result, key
            self._show(result)

        self.runner = run_in_background(job(), token, w, title=f"Uncertainty of {case.name} ({MC_SAMPLES} MC passes)",
                                        on_result=done, on_error=lambda e: w.show_error(user_message(e, w.log_path)),
                                        on_cancelled=lambda: self._set_checked(False))
        return self.runner

    def _show(self, result) -> None:
        view = self.window.slice_view
        view.set_layer(UNCERTAINTY_LAYER, normalised(result.voxel_map), heat_rgba, 6, visible=self.visible)
        self.strip.set_profile(result.slice_profile)
        self._follow()

    def _set_checked(self, on: bool) -> None:
        self.visible = on
        act = self.window.actions["toggle_uncertainty"]
        act.blockSignals(True)
        act.setChecked(on)
        act.blockSignals(False)

    def _follow(self, *_args) -> None:
        state = self.window.slice_view.state
        if state is None:
            return
        axial = state.orientation.value == "axial"
        self.strip.set_current(state.slice_index if axial else -1, axial)

    def _case_changed(self) -> None:
        self.result, self._key = None, None
        self.strip.set_profile(None)
        if self.visible and self.window.case is not None:
            self.compute()
