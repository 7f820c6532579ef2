"""Start-up of the GUI: Qt application, pyqtgraph options, error hook, case store, main window."""
from __future__ import annotations

import sys
from pathlib import Path

import pyqtgraph as pg
from PyQt5.QtWidgets import QApplication

from app.core.case_store import CaseStore
from app.core.errors import SegLoopError
from app.gui import error_dialog
from app.gui.main_window import MainWindow

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO_ROOT / "data_source"
DEFAULT_RESULTS_DIR = REPO_ROOT / "results"
DATABASE_NAME = "segloop.db"
LOG_NAME = "segloop.log"


def configure_pyqtgraph() -> None:
    """Once, before any image item exists: arrays are (row, column) like numpy (rule 6)."""
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


def build_main_window(data_dir: str | Path | None = None, results_dir: str | Path | None = None) -> MainWindow:
    """The main window on `results_dir`/segloop.db with `data_dir`'s cases listed (needs a QApplication)."""
    configure_pyqtgraph()
    results = Path(results_dir) if results_dir else DEFAULT_RESULTS_DIR
    data = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
    store = CaseStore(results / DATABASE_NAME)
    window = MainWindow(store, data_dir=data, log_path=results / LOG_NAME)
    window.annotation.offer_recovery(quiet=True)  # work left by a crash: restore or discard it
    return window


def run_gui(data_dir: str | Path | None = None, results_dir: str | Path | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("SegLoop")
    results = Path(results_dir) if results_dir else DEFAULT_RESULTS_DIR
    log_path = results / LOG_NAME
    error_dialog.setup_logging(log_path)
    error_dialog.install_excepthook(log_path)
    try:
        window = build_main_window(data_dir, results)
    except SegLoopError as error:
        # No window to show it in (e.g. an unwritable results folder): say it and stop.
        print(f"error: {error}", file=sys.stderr)
        error_dialog.show_fatal(str(error))
        return 2
    window.show()
    ids = window.case_list.case_ids()
    if ids:
        window.case_list.select_case(ids[0])
    return app.exec_()
