"""The 2D slice view: image + label overlay drawn in millimetres, so anisotropic voxels look right.

Scene units are mm: the image item covers (columns × column width) by (rows × row height) and the
view box keeps a 1:1 aspect, so a 3.3 mm slice is drawn 3.3× taller than a 1 mm pixel. The mouse
position becomes a voxel index in exactly one place, `scene_to_voxel`, which the status bar uses
now and click refinement will use later.

Mouse: wheel = slices, Ctrl+wheel = zoom, middle drag or Ctrl+left drag = window/level,
Shift+left drag = pan; plain left/right clicks are reported by `voxelClicked` (or `clickedOutside`)
and plain left/right drags by `strokeEvent`, for the annotation controller to interpret.

Besides the label overlay the view draws named layers (`set_layer`): one volume each on the image
grid, turned into RGBA per slice by a function, re-rendered on every slice or orientation change.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from typing import Callable

from PyQt5.QtCore import QPointF, QRectF, Qt, pyqtSignal

from app.core.intensity import Window
from app.core.view_state import Orientation, ViewState, drag_window
from app.gui.overlay import label_rgba

ZOOM_STEP = 1.25


class _SliceViewBox(pg.ViewBox):
    """A view box whose mouse gestures are SegLoop's, reported to the owning SliceView."""

    def __init__(self, view: "SliceView"):
        super().__init__(lockAspect=1.0, invertY=True, enableMenu=False, defaultPadding=0.01)
        self._view = view
        self._drag_start_window: Window | None = None
        self._wheel_remainder = 0.0

    def wheelEvent(self, ev, axis=None):
        if ev.modifiers() & Qt.ControlModifier:
            super().wheelEvent(ev, axis)  # pyqtgraph zooms around the mouse
            return
        # Accumulate high-resolution (touchpad) deltas into whole slices: 120 units = one notch.
        self._wheel_remainder += ev.delta() / 120.0
        steps = int(self._wheel_remainder)
        self._wheel_remainder -= steps
        if steps:
            self._view.scroll(steps)
        ev.accept()

    def mouseDragEvent(self, ev, axis=None):
        button, modifiers = ev.button(), ev.modifiers()
        if button == Qt.MiddleButton or (button == Qt.LeftButton and modifiers & Qt.ControlModifier):
            ev.accept()
            if ev.isStart() or self._drag_start_window is None:
                self._drag_start_window = self._view.state.window if self._view.state else None
            if self._drag_start_window is not None:
                delta = ev.screenPos() - ev.buttonDownScreenPos()
                self._view.set_window(drag_window(self._drag_start_window, delta.x(), delta.y()))
            if ev.isFinish():
                self._drag_start_window = None
        elif button == Qt.LeftButton and modifiers & Qt.ShiftModifier:
            super().mouseDragEvent(ev, axis)  # pan
        elif button in (Qt.LeftButton, Qt.RightButton) and self._view.state is not None:
            ev.accept()  # a scribble or a brush stroke: points off the image arrive as None
            view = self._view
            if ev.isStart():
                view.strokeEvent.emit("start", view.scene_to_voxel(ev.buttonDownScenePos()), int(button))
            phase = "finish" if ev.isFinish() else "move"
            view.strokeEvent.emit(phase, view.scene_to_voxel(ev.scenePos()), int(button))
        else:
            ev.ignore()

    def mouseClickEvent(self, ev):
        voxel = self._view.scene_to_voxel(ev.scenePos())
        if voxel is not None:
            ev.accept()
            self._view.voxelClicked.emit(*voxel, int(ev.button()))
        elif self._view.state is not None and ev.button() in (Qt.LeftButton, Qt.RightButton):
            ev.accept()
            self._view.clickedOutside.emit(int(ev.button()))


class _Layer:
    def __init__(self, item: pg.ImageItem, volume: np.ndarray, render: Callable[[np.ndarray], np.ndarray]):
        self.item, self.volume, self.render = item, volume, render
        self.visible = True


class SliceView(pg.GraphicsView):
    """Shows one slice of the open volume and its label overlay, as described by a ViewState."""

    sliceChanged = pyqtSignal(int, int)          # slice index, slice count
    orientationChanged = pyqtSignal(str)         # Orientation value
    windowChanged = pyqtSignal(object)           # Window
    voxelHovered = pyqtSignal(int, int, int)     # z, y, x under the mouse
    hoverLeft = pyqtSignal()                     # mouse outside the image
    voxelClicked = pyqtSignal(int, int, int, int)  # z, y, x, Qt.MouseButton (for click refinement)
    clickedOutside = pyqtSignal(int)             # Qt.MouseButton of a click beside the image
    strokeEvent = pyqtSignal(str, object, int)   # "start"/"move"/"finish", (z, y, x) or None, button

    def __init__(self, parent=None):
        super().__init__(parent, background="k")
        self.state: ViewState | None = None
        self.image: np.ndarray | None = None   # (z, y, x) voxels of the open volume
        self.label: np.ndarray | None = None   # (z, y, x) label on the same grid, or None
        self.view_box = _SliceViewBox(self)
        self.setCentralItem(self.view_box)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item.setZValue(10)
        self.view_box.addItem(self.image_item)
        self.view_box.addItem(self.overlay_item)
        self._layers: dict[str, _Layer] = {}
        self.setFocusPolicy(Qt.WheelFocus)
        self.setToolTip("Left click / drag: foreground seed / scribble · Right click / drag: background · "
                        "Wheel: slices · Ctrl+wheel: zoom · Middle or Ctrl+left drag: window/level · "
                        "Shift+left drag: pan")
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    # --- what is shown -------------------------------------------------------------------
    def set_volume(self, image: np.ndarray, label: np.ndarray | None, state: ViewState) -> None:
        """Show a new volume; the caller has read everything already, so this cannot fail midway."""
        if tuple(image.shape) != state.shape or (label is not None and label.shape != image.shape):
            raise ValueError("image, label and view state must share one grid")
        self.image, self.label, self.state = image, label, state
        for name in list(self._layers):  # layers belong to the previous volume
            self.remove_layer(name)
        self._render_image()
        self._render_overlay()
        self.reset_zoom()
        self.orientationChanged.emit(state.orientation.value)
        self.sliceChanged.emit(state.slice_index, state.slice_count)
        self.windowChanged.emit(state.window)

    def set_label(self, label: np.ndarray | None) -> None:
        if label is not None and self.image is not None and label.shape != self.image.shape:
            raise ValueError(f"label {label.shape} is not on the image grid {self.image.shape}")
        self.label = label
        self._render_overlay()

    def refresh_label(self) -> None:
        """Redraw the overlay after the label array changed in place (an annotation action)."""
        self._render_overlay()

    def repaint_now(self) -> None:
        """Paint the viewport synchronously (what the click-to-screen latency measures up to)."""
        self.viewport().repaint()

    def clear(self) -> None:
        self.image = self.label = self.state = None
        self.image_item.clear()
        self.overlay_item.clear()
        for name in list(self._layers):
            self.remove_layer(name)

    # --- named layers (heat map, reference outline) --------------------------------------
    def set_layer(self, name: str, volume: np.ndarray, render: Callable[[np.ndarray], np.ndarray],
                  z_value: float, visible: bool = True) -> None:
        """Show `render(current slice of volume)` (RGBA) above the image at depth `z_value`."""
        if self.image is None or volume.shape != self.image.shape:
            raise ValueError(f"layer {name!r} must lie on the image grid")
        self.remove_layer(name)
        item = pg.ImageItem(axisOrder="row-major")
        item.setZValue(z_value)
        self.view_box.addItem(item)
        layer = self._layers[name] = _Layer(item, volume, render)
        layer.visible = bool(visible)
        self._render_layer(layer)

    def remove_layer(self, name: str) -> None:
        layer = self._layers.pop(name, None)
        if layer is not None:
            self.view_box.removeItem(layer.item)

    def has_layer(self, name: str) -> bool:
        return name in self._layers

    def set_layer_visible(self, name: str, visible: bool) -> None:
        layer = self._layers.get(name)
        if layer is not None:
            layer.visible = bool(visible)
            self._render_layer(layer)

    def layer_visible(self, name: str) -> bool:
        return name in self._layers and self._layers[name].visible

    def displayed_layer(self, name: str) -> np.ndarray | None:
        """The RGBA array a layer's item holds (None when absent or hidden)."""
        layer = self._layers.get(name)
        return layer.item.image if layer is not None and layer.item.isVisible() else None

    def _render_layer(self, layer: _Layer) -> None:
        if self.state is None or not layer.visible:
            layer.item.setVisible(False)
            return
        layer.item.setImage(layer.render(self.state.slice_of(layer.volume)), autoLevels=False, levels=(0, 255))
        layer.item.setRect(self._slice_rect())
        layer.item.setVisible(True)

    def _render_layers(self) -> None:
        for layer in self._layers.values():
            self._render_layer(layer)

    @property
    def displayed_image(self) -> np.ndarray | None:
        """The array the image item holds (windowed to [0, 1])."""
        return self.image_item.image

    @property
    def displayed_overlay(self) -> np.ndarray | None:
        """The RGBA array the overlay item holds (None when hidden or no label)."""
        return self.overlay_item.image if self.overlay_item.isVisible() else None

    def _slice_rect(self) -> QRectF:
        height, width = self.state.extent_mm
        return QRectF(0.0, 0.0, width, height)

    def _render_image(self) -> None:
        if self.state is None:
            return
        self.image_item.setImage(self.state.display_image(self.image), autoLevels=False, levels=(0.0, 1.0))
        self.image_item.setRect(self._slice_rect())

    def _render_overlay(self) -> None:
        state = self.state
        if state is None or self.label is None or not state.overlay_visible:
            self.overlay_item.clear()
            self.overlay_item.setVisible(False)
            return
        rgba = label_rgba(state.slice_of(self.label), state.overlay_opacity, state.overlay_contours)
        self.overlay_item.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.overlay_item.setRect(self._slice_rect())
        self.overlay_item.setVisible(True)

    # --- navigation and display settings (each updates the state, then redraws) ----------
    def scroll(self, steps: int) -> None:
        if self.state is not None and self.state.step(steps):
            self._after_slice_change()

    def set_slice(self, index: int) -> None:
        if self.state is not None and self.state.set_slice(index):
            self._after_slice_change()

    def _after_slice_change(self) -> None:
        self._render_image()
        self._render_overlay()
        self._render_layers()
        self.sliceChanged.emit(self.state.slice_index, self.state.slice_count)

    def set_orientation(self, orientation: Orientation | str) -> None:
        if self.state is None or not self.state.set_orientation(orientation):
            return
        self._render_image()
        self._render_overlay()
        self._render_layers()
        self.reset_zoom()
        self.orientationChanged.emit(self.state.orientation.value)
        self.sliceChanged.emit(self.state.slice_index, self.state.slice_count)

    def set_window(self, window: Window) -> None:
        if self.state is None or window == self.state.window:
            return
        self.state.window = window
        self._render_image()
        self.windowChanged.emit(window)

    def set_overlay_visible(self, visible: bool) -> None:
        if self.state is not None:
            self.state.overlay_visible = bool(visible)
            self._render_overlay()

    def set_contours(self, contours: bool) -> None:
        if self.state is not None:
            self.state.overlay_contours = bool(contours)
            self._render_overlay()

    def set_opacity(self, opacity: float) -> None:
        if self.state is not None:
            self.state.set_opacity(opacity)
            self._render_overlay()

    def zoom(self, factor: float) -> None:
        """Zoom by `factor` (> 1 magnifies) around the centre of the view."""
        self.view_box.scaleBy((1.0 / factor, 1.0 / factor))

    def reset_zoom(self) -> None:
        if self.state is not None:
            self.view_box.setRange(self._slice_rect(), padding=0.01)

    # --- mouse position -> voxel: the one conversion --------------------------------------
    def scene_to_voxel(self, scene_pos: QPointF) -> tuple[int, int, int] | None:
        """The (z, y, x) voxel under a scene position, or None outside the image."""
        if self.state is None:
            return None
        view_pos = self.view_box.mapSceneToView(scene_pos)  # mm from the slice's top-left corner
        row_mm, column_mm = self.state.pixel_size_mm
        return self.state.voxel_at(view_pos.y() / row_mm, view_pos.x() / column_mm)

    def voxel_to_scene(self, z: int, y: int, x: int) -> QPointF:
        """Scene position of the centre of voxel (z, y, x) in the current orientation."""
        return self.view_box.mapViewToScene(self.voxel_to_view(z, y, x))

    def voxel_to_view(self, z: int, y: int, x: int) -> QPointF:
        """View (mm) position of the centre of voxel (z, y, x): where items in the view box go."""
        _, row, column = self.state.display_position(z, y, x)
        row_mm, column_mm = self.state.pixel_size_mm
        return QPointF((column + 0.5) * column_mm, (row + 0.5) * row_mm)

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        voxel = self.scene_to_voxel(scene_pos)
        if voxel is None:
            self.hoverLeft.emit()
        else:
            self.voxelHovered.emit(*voxel)

    def keyPressEvent(self, event):
        if event.key() in (Qt.Key_Up, Qt.Key_Down) and self.state is not None:
            self.scroll(1 if event.key() == Qt.Key_Up else -1)
            event.accept()
            return
        super().keyPressEvent(event)
