"""The brush and the eraser: a paint mode in which left drags paint (or erase) instead of refining.

B toggles paint, E toggles erase, Esc leaves either; [ and ] change the radius. In paint mode a
right drag does the opposite of the mode (erase while painting, paint while erasing), and a
click paints or erases one dab. The outline under the mouse shows the brush's footprint, an
ellipse on anisotropic slices because the radius is counted in pixels of the slice.
"""
from __future__ import annotations

from PyQt5.QtCore import QObject, QRectF, Qt, pyqtSignal
from PyQt5.QtGui import QPen
from PyQt5.QtWidgets import QGraphicsEllipseItem

PAINT, ERASE = "paint", "erase"
MIN_RADIUS_PX, MAX_RADIUS_PX, DEFAULT_RADIUS_PX = 1, 40, 3


class BrushTool(QObject):
    changed = pyqtSignal()   # mode or radius

    def __init__(self, parent=None):
        super().__init__(parent)
        self.mode: str | None = None
        self.radius_px = DEFAULT_RADIUS_PX

    @property
    def active(self) -> bool:
        return self.mode is not None

    def set_mode(self, mode: str | None) -> None:
        if mode not in (None, PAINT, ERASE):
            raise ValueError(f"brush mode must be None, {PAINT!r} or {ERASE!r}")
        if mode != self.mode:
            self.mode = mode
            self.changed.emit()

    def toggle(self, mode: str) -> None:
        self.set_mode(None if self.mode == mode else mode)

    def set_radius(self, radius_px: int) -> None:
        radius = int(min(max(int(radius_px), MIN_RADIUS_PX), MAX_RADIUS_PX))
        if radius != self.radius_px:
            self.radius_px = radius
            self.changed.emit()

    def grow(self, steps: int) -> None:
        self.set_radius(self.radius_px + steps)

    def erases(self, button: int) -> bool:
        """Whether a stroke with this mouse button erases (right inverts the mode)."""
        erase = self.mode == ERASE
        return (not erase) if button == int(Qt.RightButton) else erase

    def describe(self) -> str:
        if self.mode is None:
            return "Clicks refine"
        return f"{self.mode.capitalize()} brush, radius {self.radius_px} px"


class BrushCursor:
    """The brush outline drawn around the voxel under the mouse (only in paint mode)."""

    def __init__(self, view, tool: BrushTool):
        self.view, self.tool = view, tool
        self.item = QGraphicsEllipseItem()
        pen = QPen(Qt.white)
        pen.setCosmetic(True)
        pen.setStyle(Qt.DashLine)
        self.item.setPen(pen)
        self.item.setZValue(30)
        self.item.setVisible(False)
        view.view_box.addItem(self.item)
        self._voxel = None
        view.voxelHovered.connect(self.move_to)
        view.hoverLeft.connect(lambda: self.item.setVisible(False))
        tool.changed.connect(self._redraw)

    def move_to(self, z: int, y: int, x: int) -> None:
        self._voxel = (z, y, x)
        self._redraw()

    def _redraw(self) -> None:
        state = self.view.state
        if not self.tool.active or state is None or self._voxel is None:
            self.item.setVisible(False)
            return
        centre = self.view.voxel_to_view(*self._voxel)
        row_mm, column_mm = state.pixel_size_mm
        r = self.tool.radius_px
        self.item.setRect(QRectF(centre.x() - r * column_mm, centre.y() - r * row_mm,
                                 2 * r * column_mm, 2 * r * row_mm))
        self.item.setVisible(True)
