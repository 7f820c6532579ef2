"""The keyboard and mouse table: one list drives the menu shortcuts, the Help dialog and the README.

Kept free of Qt so the README table can be printed without a display
(`python -c "from app.gui.shortcuts import shortcuts_markdown; print(shortcuts_markdown())"`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shortcut:
    keys: tuple[str, ...]  # QKeySequence strings for key entries; plain words for mouse entries
    description: str
    action: str | None = None  # MainWindow action id bound to `keys`; None: handled by the slice view

    @property
    def keys_text(self) -> str:
        return " / ".join(self.keys)


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut(("Ctrl+O",), "Open an image file (adds it to the case list)", "open_file"),
    Shortcut(("Ctrl+Shift+O",), "Open a folder of cases (flat, MSD layout or a DICOM series)", "open_folder"),
    Shortcut(("Ctrl+L",), "Load a label file onto the open case (as the editable label; undoable)", "open_label"),
    Shortcut(("Ctrl+S",), "Save the label to results/labels/(case name).nii.gz (case status: in progress)", "save"),
    Shortcut(("Ctrl+D",), "Save and mark the case done", "mark_done"),
    Shortcut(("1",), "Axial view", "axial"),
    Shortcut(("2",), "Coronal view", "coronal"),
    Shortcut(("3",), "Sagittal view", "sagittal"),
    Shortcut(("PgUp",), "Next slice", "next_slice"),
    Shortcut(("PgDown",), "Previous slice", "previous_slice"),
    Shortcut(("Up", "Down"), "Next / previous slice (when the slice view has focus)"),
    Shortcut(("Mouse wheel",), "Scroll through slices"),
    Shortcut(("Ctrl+Mouse wheel",), "Zoom in / out around the mouse"),
    Shortcut(("+", "="), "Zoom in", "zoom_in"),
    Shortcut(("-",), "Zoom out", "zoom_out"),
    Shortcut(("0",), "Fit the slice to the view", "reset_zoom"),
    Shortcut(("Shift+Left drag",), "Pan"),
    Shortcut(("Middle drag", "Ctrl+Left drag"), "Window/level: right/left widens/narrows the window, up/down raises/lowers the level"),
    Shortcut(("O",), "Show / hide the label overlay", "toggle_overlay"),
    Shortcut(("C",), "Filled overlay / contours only", "toggle_contours"),
    Shortcut(("H",), "Show / hide the heat map (FPSNet CAM, or the network's probability)", "toggle_heatmap"),
    Shortcut(("R",), "Show / hide the reference label's outline (cyan)", "toggle_reference"),
    Shortcut(("Ctrl+G",), "Segment: the chosen model's proposal becomes the editable label", "segment"),
    Shortcut(("Left click",), "Foreground seed: add the missed region there (refined by the chosen engine)"),
    Shortcut(("Right click",), "Background seed: remove the over-segmented region there"),
    Shortcut(("Left drag", "Right drag"), "Foreground / background scribble"),
    Shortcut(("Ctrl+Z",), "Undo the last click, scribble, brush stroke, proposal or propagation", "undo"),
    Shortcut(("Ctrl+Shift+Z", "Ctrl+Y"), "Redo", "redo"),
    Shortcut(("Ctrl+Del",), "Clear the seeds of the current slice (the label is kept)", "clear_seeds"),
    Shortcut(("B",), "Paint brush on / off: left drag paints, right drag erases", "paint"),
    Shortcut(("E",), "Eraser on / off: left drag erases, right drag paints", "erase"),
    Shortcut(("[",), "Smaller brush", "brush_smaller"),
    Shortcut(("]",), "Bigger brush", "brush_bigger"),
    Shortcut(("Esc",), "Leave paint mode: clicks refine again", "leave_paint"),
    Shortcut(("P",), "Propagate the current slice's label to its neighbours in 3D", "propagate"),
    Shortcut(("N",), "Next case: open the top of the annotation queue (most worth annotating)", "next_case"),
    Shortcut(("U",), "Show / hide the model's uncertainty map (MC dropout, computed in the background)", "toggle_uncertainty"),
    Shortcut(("Ctrl+E",), "Export the done cases as a training set (MSD / nnU-Net layout)", "export_dataset"),
    Shortcut(("F1",), "This list of shortcuts", "show_shortcuts"),
    Shortcut(("Ctrl+Q",), "Quit", "quit"),
)


def keyboard_shortcuts() -> list[tuple[str, str]]:
    """(keys, what they do), in menu order, for the Help dialog and the README."""
    return [(s.keys_text, s.description) for s in SHORTCUTS]


def action_shortcuts() -> dict[str, tuple[str, ...]]:
    """Action id -> key sequences, for the main window's QActions."""
    return {s.action: s.keys for s in SHORTCUTS if s.action}


def shortcuts_markdown() -> str:
    rows = ["| keys | action |", "|---|---|"]
    rows += [f"| {keys} | {text} |" for keys, text in keyboard_shortcuts()]
    return "\n".join(rows)
