"""The main window: case list on the left, slice view with its controls on the right, and the
annotation tools (app/gui/annotation_ui.py: Segment, clicks, brush, undo, save, recovery).

Handlers stay short: read the widgets, call the core (case store, case loader, view state), show
the result or the error. Every failure the user can cause ends in `show_error` with the core's
sentence, and nothing on screen changes until a case has been read completely.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt5.QtCore import Qt
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import (QAction, QActionGroup, QFileDialog, QHBoxLayout, QLabel, QMainWindow,
                             QPushButton, QSplitter, QVBoxLayout, QWidget)

from app.core.case_discovery import discover_cases
from app.core.case_loader import LoadedCase, load_case, paired_label
from app.core.errors import SegLoopError
from app.core.intensity import default_window, percentile_window
from app.core.view_state import Orientation, ViewState, focus_cursor
from app.core.volume_io import read_label
from app.gui import error_dialog
from app.gui.annotation_ui import AnnotationUi
from app.gui.case_list_widget import CaseListWidget
from app.gui.help_dialog import ShortcutsDialog
from app.gui.loop_features import install_loop_features
from app.gui.shortcuts import action_shortcuts
from app.gui.slice_view import ZOOM_STEP, SliceView
from app.gui.view_controls_widget import ViewControlsWidget
from app.gui.window_level_widget import WindowLevelWidget

IMAGE_FILTER = ("Images (*.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd *.png *.jpg *.jpeg);;All files (*)")


def _os_error_text(path, error: OSError) -> str:
    return f"{path} cannot be read ({error.strerror or error})."


class MainWindow(QMainWindow):
    def __init__(self, store, data_dir: str | Path | None = None, log_path: Path | None = None, parent=None):
        super().__init__(parent)
        self.store = store
        self.log_path = log_path
        self.case: LoadedCase | None = None
        self.last_error: str | None = None
        self.last_message: str | None = None
        self.setWindowTitle("SegLoop")
        self._build_widgets()
        self.annotation = AnnotationUi(self)
        self._build_actions()
        self._connect()
        install_loop_features(self)  # batch, export, annotators, queue, uncertainty, retrain
        if data_dir is not None:
            self.add_folder(data_dir)
        self.refresh_case_list()

    # ---------------------------------------------------------------- layout
    def _build_widgets(self) -> None:
        self.case_list = CaseListWidget()
        open_file_button = QPushButton("Open file…")
        open_folder_button = QPushButton("Open folder…")
        open_file_button.clicked.connect(self.ask_open_file)
        open_folder_button.clicked.connect(self.ask_open_folder)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(6, 6, 0, 6)
        left_layout.addWidget(QLabel("Cases"))
        left_layout.addWidget(self.case_list, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(open_file_button)
        buttons.addWidget(open_folder_button)
        left_layout.addLayout(buttons)

        self.slice_view = SliceView()
        self.view_controls = ViewControlsWidget()
        self.window_level = WindowLevelWidget()
        controls = QHBoxLayout()
        controls.addWidget(self.view_controls)
        controls.addStretch(1)
        controls.addWidget(self.window_level)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 6, 6, 6)
        right_layout.addLayout(controls)
        right_layout.addWidget(self.slice_view, 1)

        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([240, 900])
        self.setCentralWidget(splitter)

        self.cursor_label = QLabel("")
        self.cursor_label.setToolTip("Under the mouse: voxel index (x, y, z), world position in mm, "
                                     "intensity and label value")
        self.case_label = QLabel("")
        self.slice_label = QLabel("")
        for label in (self.case_label, self.slice_label):
            label.setContentsMargins(12, 0, 6, 0)
        self.statusBar().addWidget(self.cursor_label, 1)
        self.statusBar().addPermanentWidget(self.case_label)
        self.statusBar().addPermanentWidget(self.slice_label)
        self.view_controls.show_state(Orientation.AXIAL.value, True, False, 0.4)
        self.resize(1200, 760)

    def make_action(self, action_id: str, text: str, slot, checkable: bool = False) -> QAction:
        """A window-wide action with the keys the shortcut table gives `action_id`."""
        act = QAction(text, self)
        act.setShortcuts([QKeySequence(k) for k in action_shortcuts().get(action_id, ())])
        act.setCheckable(checkable)
        (act.toggled if checkable else act.triggered).connect(slot)
        self.addAction(act)  # shortcuts work even when the menu bar is hidden
        self.actions[action_id] = act
        return act

    def _build_actions(self) -> None:
        self.actions: dict[str, QAction] = {}
        action = self.make_action
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(action("open_file", "Open &file…", self.ask_open_file))
        file_menu.addAction(action("open_folder", "Open f&older…", self.ask_open_folder))
        file_menu.addAction(action("open_label", "Open &label for this case…", self.ask_open_label))
        file_menu.addSeparator()
        file_menu.addAction(action("quit", "&Quit", self.close))

        view_menu = self.menuBar().addMenu("&View")
        group = QActionGroup(self)
        for orientation in Orientation:
            act = action(orientation.value, orientation.value.capitalize(),
                         lambda _=False, o=orientation.value: self.slice_view.set_orientation(o))
            act.setCheckable(True)
            group.addAction(act)
            view_menu.addAction(act)
        self.actions[Orientation.AXIAL.value].setChecked(True)
        view_menu.addSeparator()
        view_menu.addAction(action("next_slice", "Next slice", lambda: self.slice_view.scroll(1)))
        view_menu.addAction(action("previous_slice", "Previous slice", lambda: self.slice_view.scroll(-1)))
        view_menu.addSeparator()
        view_menu.addAction(action("zoom_in", "Zoom in", lambda: self.slice_view.zoom(ZOOM_STEP)))
        view_menu.addAction(action("zoom_out", "Zoom out", lambda: self.slice_view.zoom(1 / ZOOM_STEP)))
        view_menu.addAction(action("reset_zoom", "Fit to view", self.slice_view.reset_zoom))
        view_menu.addSeparator()
        view_menu.addAction(action("toggle_overlay", "Show label overlay", self.set_overlay_visible, True))
        view_menu.addAction(action("toggle_contours", "Label contours only", self.set_contours, True))
        self.actions["toggle_overlay"].setChecked(True)

        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(action("show_shortcuts", "&Keyboard shortcuts", self.show_shortcuts))
        self.menus = {"file": file_menu, "view": view_menu, "help": help_menu}
        self.annotation.build_menus(action)

    def _connect(self) -> None:
        self.case_list.caseSelected.connect(self.open_case_id)
        view = self.slice_view
        view.sliceChanged.connect(self._on_slice_changed)
        view.orientationChanged.connect(self._on_orientation_changed)
        view.windowChanged.connect(self.window_level.show_window)
        view.voxelHovered.connect(self._on_hover)
        view.hoverLeft.connect(lambda: self.cursor_label.setText(""))
        self.window_level.windowChosen.connect(view.set_window)
        self.view_controls.orientationChosen.connect(view.set_orientation)
        self.view_controls.overlayToggled.connect(self.set_overlay_visible)
        self.view_controls.contoursToggled.connect(self.set_contours)
        self.view_controls.opacityChanged.connect(self.set_opacity)

    # ---------------------------------------------------------------- errors
    def show_error(self, message: str):
        """Every message for the user goes through here (tests read `last_error`)."""
        self.last_error = message
        return error_dialog.show_error(self, message)

    def notify(self, message: str) -> None:
        """A passing notice in the status bar (tests read `last_message`)."""
        self.last_message = message
        self.statusBar().showMessage(message, 8000)

    # ---------------------------------------------------------------- cases
    def refresh_case_list(self) -> None:
        self.case_list.set_cases(self.store.list_cases())
        if self.case is not None:
            self.case_list.select_case(self.case.case_id, notify=False)

    def add_folder(self, folder: str | Path) -> list[int]:
        """Add every case found in `folder` to the store; returns their ids (empty on error)."""
        try:
            found = discover_cases(folder)
        except SegLoopError as error:
            self.show_error(str(error))
            return []
        except OSError as error:
            self.show_error(_os_error_text(folder, error))
            return []
        if not found:
            self.show_error(f"{folder} holds no image SegLoop can open (NIfTI, NRRD, MetaImage, "
                            "PNG/JPEG or a DICOM series).")
            return []
        return [self.store.add_case(c.image_path, c.reference_label_path).id for c in found]

    def open_folder(self, folder: str | Path) -> bool:
        ids = self.add_folder(folder)
        self.refresh_case_list()
        return bool(ids) and self.open_case_id(ids[0])

    def open_file(self, path: str | Path, label_path: str | Path | None = None) -> bool:
        """Open an image file (with its paired label, or `label_path`) and add it to the case list."""
        known = self.store.find_by_image(path) if label_path is None else None
        if known is not None:  # already a case: open it with its working label and status
            return self.open_case_id(known.id)
        label_path = label_path or paired_label(path)
        loaded = self._load(path, reference_label_path=label_path)
        if loaded is None:
            return False
        record = self.store.add_case(path, label_path)
        loaded.case_id = record.id
        self._display(loaded)
        self.refresh_case_list()
        return True

    def open_case_id(self, case_id: int) -> bool:
        if self.case is not None and self.case.case_id == case_id:
            return True
        try:
            record = self.store.get(case_id)
        except SegLoopError as error:
            self.show_error(str(error))
            return False
        loaded = self._load(record.image_path, record.label_path, record.reference_label_path, record.id)
        if loaded is None:
            # Keep the highlight on the case that is still displayed.
            self.case_list.select_case(self.case.case_id if self.case else None, notify=False)
            return False
        self._display(loaded)
        if record.modality != loaded.image.modality:
            self.store.set_modality(record.id, loaded.image.modality)
        return True

    def open_label(self, path: str | Path) -> bool:
        """Overlay a label file on the open case; it must lie on the case's grid."""
        if self.case is None:
            self.show_error("Open a case first, then its label.")
            return False
        try:
            label = read_label(path, self.case.image)
        except SegLoopError as error:
            self.show_error(str(error))
            return False
        except OSError as error:
            self.show_error(_os_error_text(path, error))
            return False
        if not self.annotation.controller.replace_label(label.array, "file"):
            return False
        self.case.label_source = "file"
        self.case_label.setText(f"{self.case.image.modality} · label {Path(path).name}")
        return True

    def _load(self, image_path, label_path=None, reference_label_path=None, case_id=None) -> LoadedCase | None:
        try:
            return load_case(image_path, label_path, reference_label_path, case_id)
        except SegLoopError as error:
            self.show_error(str(error))
        except OSError as error:
            self.show_error(_os_error_text(image_path, error))
        return None

    def _display(self, loaded: LoadedCase) -> None:
        self.annotation.before_case_change()
        image = loaded.image
        label = loaded.label.array if loaded.label is not None else None
        previous = self.slice_view.state
        settings = {} if previous is None else dict(
            orientation=previous.orientation, overlay_visible=previous.overlay_visible,
            overlay_contours=previous.overlay_contours, overlay_opacity=previous.overlay_opacity)
        auto = percentile_window(image.array)  # MR's default, and the "Auto" preset for any case
        window = default_window(image.array, "CT") if image.modality == "CT" else auto
        state = ViewState.for_volume(image, window, cursor=focus_cursor(label) or [], **settings)
        self.case = loaded
        self.case_list.select_case(loaded.case_id, notify=False)
        self.window_level.set_auto_window(auto)
        self.slice_view.set_volume(image.array, label, state)
        self.annotation.case_opened(loaded)
        self._sync_controls()
        self.setWindowTitle(f"SegLoop — {loaded.name} ({image.grid_description()})")
        self.case_label.setText(f"{image.modality} · {loaded.label_source} label")
        self.case_label.setToolTip("\n".join([image.grid_description(), *image.notes]))
        if image.notes:  # what the reader adapted (e.g. RGB stored grey): worth a visible mention
            self.statusBar().showMessage(" ".join(image.notes), 8000)
        self.slice_view.setFocus()

    # ---------------------------------------------------------------- display settings
    def set_overlay_visible(self, visible: bool) -> None:
        self.slice_view.set_overlay_visible(visible)
        self._sync_controls()

    def set_contours(self, contours: bool) -> None:
        self.slice_view.set_contours(contours)
        self._sync_controls()

    def set_opacity(self, opacity: float) -> None:
        self.slice_view.set_opacity(opacity)
        self._sync_controls()

    def _sync_controls(self) -> None:
        state = self.slice_view.state
        if state is None:
            return
        self.view_controls.show_state(state.orientation.value, state.overlay_visible,
                                      state.overlay_contours, state.overlay_opacity)
        for action_id, checked in (("toggle_overlay", state.overlay_visible),
                                   ("toggle_contours", state.overlay_contours),
                                   (state.orientation.value, True)):
            act = self.actions[action_id]
            act.blockSignals(True)
            act.setChecked(checked)
            act.blockSignals(False)

    def _on_orientation_changed(self, _orientation: str) -> None:
        self._sync_controls()

    def _on_slice_changed(self, index: int, count: int) -> None:
        state = self.slice_view.state
        self.slice_label.setText(f"{state.orientation.value}  slice {index + 1} / {count}")

    def _on_hover(self, z: int, y: int, x: int) -> None:
        self.cursor_label.setText(self.hover_text(z, y, x))

    def hover_text(self, z: int, y: int, x: int) -> str:
        """Status bar text for voxel (z, y, x): index in (x, y, z) order as ITK tools show it, mm, value."""
        image = self.case.image
        wx, wy, wz = image.index_to_world(z, y, x)
        value = image.array[z, y, x]
        value_text = f"{value:g}" if np.issubdtype(value.dtype, np.floating) else str(int(value))
        text = f"(x, y, z) = ({x}, {y}, {z})   ({wx:.1f}, {wy:.1f}, {wz:.1f}) mm   value {value_text}"
        label = self.slice_view.label  # the editable label, live
        if label is not None:
            text += f"   label {int(label[z, y, x])}"
        return text

    # ---------------------------------------------------------------- dialogs
    def ask_open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", IMAGE_FILTER)
        if path:
            self.open_file(path)

    def ask_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of cases or a DICOM series")
        if folder:
            self.open_folder(folder)

    def ask_open_label(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open label", "", IMAGE_FILTER)
        if path:
            self.open_label(path)

    def closeEvent(self, event) -> None:
        self.annotation.shutdown()  # saves unsaved edits, stops the refinement worker
        super().closeEvent(event)

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self)
        dialog.setAttribute(Qt.WA_DeleteOnClose)
        dialog.show()
        return dialog
