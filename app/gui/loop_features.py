"""The annotation loop's GUI (issues 6 and 7) installed on the main window in one call:
Batch > Pre-label cases…, File > Export dataset…, File > Import annotation…, Edit > Preferences…,
View > Consensus overlay / Uncertainty map, the annotation-queue dock with Next case (N), the
slice-uncertainty strip and Train > Retrain model….

Everything lives on `window.loop` (a LoopFeatures), so the main window needs one line.
"""
from __future__ import annotations

from PyQt5.QtCore import QEvent, QObject, Qt, QTimer
from PyQt5.QtWidgets import QMenu

from app.gui.annotators import Annotators, CaseWatcher
from app.gui.batch_dialog import BatchAction
from app.gui.export_dialog import ExportAction
from app.gui.queue_panel_widget import QueuePanelWidget
from app.gui.summary_box import close_tracked
from app.gui.train_dialog import TrainAction
from app.gui.uncertainty_strip_widget import UncertaintyView


class _CloseWatcher(QObject):
    """On the window's Close: stop a training child and close the loop's non-modal windows."""

    def __init__(self, features: "LoopFeatures"):
        super().__init__(features.window)
        self.features = features

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Close and obj is self.features.window:
            if self.features.trainer.busy:
                self.features.trainer.cancel()
            close_tracked(obj)
        return False


class LoopFeatures:
    def __init__(self, window):
        self.window = window
        make = window.make_action
        self.watcher = CaseWatcher(window)
        self.batch = BatchAction(window)
        self.export = ExportAction(window)
        self.annotators = Annotators(window, self.watcher)
        self.uncertainty = UncertaintyView(window, self.watcher)
        self.queue = QueuePanelWidget(window)
        window.addDockWidget(Qt.RightDockWidgetArea, self.queue)
        self.trainer = TrainAction(window, on_model_changed=self.queue.model_changed)

        file_menu = window.menus["file"]
        file_menu.insertAction(file_menu.actions()[-2], make("export_dataset", "&Export dataset…", self.export.ask))
        self.annotators.build_menus(make)
        self.uncertainty.build_menus(make)
        view = window.menus["view"]
        view.addAction(self.queue.toggleViewAction())
        batch = QMenu("&Batch", window)
        batch.addAction(make("prelabel", "&Pre-label cases…", self.batch.ask))
        batch.addSeparator()
        batch.addAction(make("score_cases", "&Score cases for the queue", self.queue.score))
        batch.addAction(make("next_case", "&Next case in the queue", self.queue.open_next))
        train = QMenu("&Train", window)
        train.addAction(make("retrain", "&Retrain model…", self.trainer.ask))
        help_action = window.menus["help"].menuAction()
        window.menuBar().insertMenu(help_action, batch)
        window.menuBar().insertMenu(help_action, train)
        window.menus.update({"batch": batch, "train": train})

        # The queue follows the case list (statuses change on save, done, batch) and the model.
        self._timer = QTimer(self.queue)  # dies with the window: never fires on a deleted widget
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.queue.refresh)
        window.case_list.model().rowsInserted.connect(self._refresh_soon)
        window.annotation.model_combo.currentIndexChanged.connect(self._refresh_soon)
        self._refresh_soon()
        self._close_watcher = _CloseWatcher(self)
        window.installEventFilter(self._close_watcher)

    def _refresh_soon(self, *_args) -> None:
        self._timer.start(0)  # one refresh per burst of changes


def install_loop_features(window) -> LoopFeatures:
    window.loop = LoopFeatures(window)
    return window.loop
