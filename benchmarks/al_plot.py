"""Line plots with mean ± sd bands, drawn with Qt's QPainter offscreen (no matplotlib needed)."""
from __future__ import annotations

import os
from pathlib import Path

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def _app():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt5.QtGui import QGuiApplication

    return QGuiApplication.instance() or QGuiApplication([])


def _ticks(low: float, high: float, n: int = 6) -> list[float]:
    import math

    span = max(high - low, 1e-9)
    raw = span / n
    step = 10 ** math.floor(math.log10(raw))
    step *= min((m for m in (1, 2, 2.5, 5, 10) if m * step >= raw), default=10)
    start = math.ceil(low / step) * step
    out, v = [], start
    while v <= high + 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def line_plot(path: str | Path, series: dict[str, tuple[list, list, list]], title: str,
              xlabel: str, ylabel: str, hlines: list[tuple[float, str]] = (),
              size: tuple[int, int] = (900, 600), xticks: list | None = None) -> Path:
    """series: name -> (x, mean, sd). hlines: (y, label) dashed reference lines. Writes a PNG."""
    app = _app()  # noqa: F841  (fonts need a GUI application object)
    from PyQt5.QtCore import QPointF, QRectF, Qt
    from PyQt5.QtGui import QColor, QFont, QImage, QPainter, QPen, QPolygonF

    w, h = size
    left, right, top, bottom = 80, 200, 50, 70
    image = QImage(w, h, QImage.Format_ARGB32)
    image.fill(QColor("white"))
    xs = [x for s in series.values() for x in s[0]]
    ys = [m + d for s in series.values() for m, d in zip(s[1], s[2])] + \
         [m - d for s in series.values() for m, d in zip(s[1], s[2])] + [y for y, _ in hlines]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    pad = 0.05 * max(y1 - y0, 1e-3)
    y0, y1 = max(0.0, y0 - pad), y1 + pad
    if x1 == x0:
        x1 = x0 + 1

    def px(x, y):
        return QPointF(left + (x - x0) / (x1 - x0) * (w - left - right),
                       top + (1 - (y - y0) / (y1 - y0)) * (h - top - bottom))

    p = QPainter(image)
    p.setRenderHint(QPainter.Antialiasing)
    font = QFont("Sans", 10)
    p.setFont(font)
    p.setPen(QPen(QColor("#999999"), 1))
    for t in _ticks(y0, y1):
        a, b = px(x0, t), px(x1, t)
        p.setPen(QPen(QColor("#e6e6e6"), 1))
        p.drawLine(a, b)
        p.setPen(QPen(QColor("black"), 1))
        p.drawText(QRectF(0, a.y() - 8, left - 8, 16), Qt.AlignRight | Qt.AlignVCenter, f"{t:g}")
    for t in (xticks if xticks is not None else _ticks(x0, x1, 8)):
        a = px(t, y0)
        p.setPen(QPen(QColor("black"), 1))
        p.drawLine(a, QPointF(a.x(), a.y() + 5))
        p.drawText(QRectF(a.x() - 30, a.y() + 6, 60, 16), Qt.AlignCenter, f"{t:g}")
    p.setPen(QPen(QColor("black"), 1))
    p.drawRect(QRectF(px(x0, y1), px(x1, y0)))
    label_ys = []
    for y, label in sorted(hlines, key=lambda yl: -yl[0]):
        pen = QPen(QColor("#555555"), 1.5, Qt.DashLine)
        p.setPen(pen)
        p.drawLine(px(x0, y), px(x1, y))
        ty = px(x1, y).y()
        if label_ys and ty < label_ys[-1] + 16:      # keep close labels from overprinting
            ty = label_ys[-1] + 16
        label_ys.append(ty)
        p.drawText(QRectF(px(x1, y).x() + 4, ty - 8, right - 8, 16), Qt.AlignLeft | Qt.AlignVCenter, label)
    for i, (name, (x, mean, sd)) in enumerate(series.items()):
        colour = QColor(COLOURS[i % len(COLOURS)])
        band = QColor(colour)
        band.setAlpha(40)
        if any(d > 0 for d in sd):
            poly = QPolygonF([px(a, m + d) for a, m, d in zip(x, mean, sd)] +
                             [px(a, m - d) for a, m, d in reversed(list(zip(x, mean, sd)))])
            p.setPen(Qt.NoPen)
            p.setBrush(band)
            p.drawPolygon(poly)
            p.setBrush(Qt.NoBrush)
        p.setPen(QPen(colour, 2.2))
        pts = [px(a, m) for a, m in zip(x, mean)]
        for a, b in zip(pts, pts[1:]):
            p.drawLine(a, b)
        for a in pts:
            p.drawEllipse(a, 3, 3)
        ly = h - bottom - 22 * (len(series) - i)     # legend bottom right, clear of the reference labels
        p.drawLine(QPointF(w - right + 12, ly), QPointF(w - right + 40, ly))
        p.setPen(QPen(QColor("black"), 1))
        p.drawText(QRectF(w - right + 46, ly - 9, right - 50, 18), Qt.AlignLeft | Qt.AlignVCenter, name)
    p.setPen(QPen(QColor("black"), 1))
    p.setFont(QFont("Sans", 12, QFont.Bold))
    p.drawText(QRectF(0, 8, w, 30), Qt.AlignCenter, title)
    p.setFont(font)
    p.drawText(QRectF(left, h - 35, w - left - right, 25), Qt.AlignCenter, xlabel)
    p.save()
    p.translate(18, top + (h - top - bottom) / 2)
    p.rotate(-90)
    p.drawText(QRectF(-150, -10, 300, 20), Qt.AlignCenter, ylabel)
    p.restore()
    p.end()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    if not image.save(str(tmp), "PNG"):
        raise OSError(f"could not write {path}")
    os.replace(tmp, path)
    return path
