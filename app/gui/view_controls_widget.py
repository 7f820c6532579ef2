"""Orientation and overlay controls above the slice view (mirrors of the View menu actions)."""
from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QWidget

from app.core.view_state import Orientation


class ViewControlsWidget(QWidget):
    orientationChosen = pyqtSignal(str)
    overlayToggled = pyqtSignal(bool)
    contoursToggled = pyqtSignal(bool)
    opacityChanged = pyqtSignal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.orientation_combo = QComboBox()
        for number, orientation in enumerate(Orientation, start=1):
            self.orientation_combo.addItem(f"{orientation.value.capitalize()} ({number})", orientation.value)
        self.orientation_combo.setToolTip("Slice orientation (keys 1 / 2 / 3)")
        self.overlay_check = QCheckBox("Label")
        self.overlay_check.setToolTip("Show the label overlay (O)")
        self.overlay_check.setChecked(True)
        self.contour_check = QCheckBox("Contours")
        self.contour_check.setToolTip("Draw label outlines instead of filled regions (C)")
        self.opacity_slider = QSlider(Qt.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setFixedWidth(110)
        self.opacity_slider.setToolTip("Label overlay opacity")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("View"))
        layout.addWidget(self.orientation_combo)
        layout.addSpacing(12)
        layout.addWidget(self.overlay_check)
        layout.addWidget(self.contour_check)
        layout.addWidget(QLabel("Opacity"))
        layout.addWidget(self.opacity_slider)
        self.orientation_combo.activated.connect(
            lambda i: self.orientationChosen.emit(self.orientation_combo.itemData(i)))
        self.overlay_check.toggled.connect(self.overlayToggled)
        self.contour_check.toggled.connect(self.contoursToggled)
        self.opacity_slider.valueChanged.connect(lambda v: self.opacityChanged.emit(v / 100.0))

    def show_state(self, orientation: str, overlay: bool, contours: bool, opacity: float) -> None:
        """Display settings changed elsewhere (keys, menu) without emitting."""
        widgets = (self.orientation_combo, self.overlay_check, self.contour_check, self.opacity_slider)
        for widget in widgets:
            widget.blockSignals(True)
        self.orientation_combo.setCurrentIndex(self.orientation_combo.findData(orientation))
        self.overlay_check.setChecked(overlay)
        self.contour_check.setChecked(contours)
        self.opacity_slider.setValue(round(opacity * 100))
        for widget in widgets:
            widget.blockSignals(False)
