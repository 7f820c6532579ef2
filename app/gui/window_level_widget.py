"""Window/level controls: a preset list (CT presets, MR auto) and width/level spin boxes.

The widget only reports what the user picked; the slice view owns the current window and the
main window keeps the two in step with `show_window`, which never re-emits.
"""
from __future__ import annotations

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QWidget

from app.core.intensity import CT_PRESETS, Window

AUTO = "Auto (1–99 %)"
CUSTOM = "Custom"


def preset_label(name: str, window: Window) -> str:
    return f"{name} {window.width:g}/{window.level:g}"


class WindowLevelWidget(QWidget):
    windowChosen = pyqtSignal(object)  # Window

    def __init__(self, parent=None):
        super().__init__(parent)
        self._auto_window = Window(1.0, 0.5)
        self.preset_combo = QComboBox()
        self.preset_combo.addItem(AUTO, AUTO)
        for name, window in CT_PRESETS.items():
            self.preset_combo.addItem(preset_label(name, window), name)
        self.preset_combo.addItem(CUSTOM, CUSTOM)
        self.preset_combo.setToolTip("Window/level preset; Auto spans the 1st–99th intensity "
                                     "percentile (for MR). Middle drag or Ctrl+left drag in the view "
                                     "adjusts it by hand.")
        self.width_spin = self._spin("Window width", 1e-3, 1e6)
        self.level_spin = self._spin("Window level (centre)", -1e6, 1e6)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for text, widget in (("W/L", self.preset_combo), ("W", self.width_spin), ("L", self.level_spin)):
            layout.addWidget(QLabel(text))
            layout.addWidget(widget)
        self.preset_combo.activated.connect(self._on_preset)
        self.width_spin.editingFinished.connect(self._on_spin)
        self.level_spin.editingFinished.connect(self._on_spin)

    def _spin(self, tip: str, low: float, high: float) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(low, high)
        spin.setDecimals(1)
        spin.setKeyboardTracking(False)
        spin.setToolTip(tip)
        return spin

    def set_auto_window(self, window: Window) -> None:
        """The window 'Auto' stands for on the open volume."""
        self._auto_window = window

    def preset_window(self, key: str) -> Window:
        return self._auto_window if key == AUTO else CT_PRESETS[key]

    def choose_preset(self, key: str) -> None:
        """Select a preset as if the user had picked it (AUTO or a CT_PRESETS name)."""
        index = self.preset_combo.findData(key)
        if index < 0:
            raise KeyError(key)
        self.preset_combo.setCurrentIndex(index)
        self._on_preset(index)

    def show_window(self, window: Window) -> None:
        """Display `window` (set elsewhere) without emitting windowChosen."""
        for widget in (self.preset_combo, self.width_spin, self.level_spin):
            widget.blockSignals(True)
        self.width_spin.setValue(window.width)
        self.level_spin.setValue(window.level)
        key = next((k for k in [AUTO, *CT_PRESETS] if self.preset_window(k) == window), CUSTOM)
        self.preset_combo.setCurrentIndex(self.preset_combo.findData(key))
        for widget in (self.preset_combo, self.width_spin, self.level_spin):
            widget.blockSignals(False)

    def _on_preset(self, index: int) -> None:
        key = self.preset_combo.itemData(index)
        if key != CUSTOM:
            self.windowChosen.emit(self.preset_window(key))

    def _on_spin(self) -> None:
        self.windowChosen.emit(Window(self.width_spin.value(), self.level_spin.value()))
