"""File > Export dataset…: writes the dataset; a second export to the same folder asks first."""
from __future__ import annotations

import json

from PyQt5.QtWidgets import QMessageBox


def _wait(qtbot, export):
    qtbot.waitUntil(lambda: export.runner is not None and not export.runner.running, timeout=60000)


def test_export_writes_a_dataset_and_asks_before_overwriting(window, qtbot, tmp_path):
    store, export = window.store, window.loop.export
    done = next(r for r in store.list_cases() if r.name == "sts002_mr")
    store.set_status(done.id, "done")
    out = tmp_path / "export"

    dialog = export.ask()
    dialog.folder_edit.setText(str(out))
    assert dialog.options()["status"] == "done" and dialog.options()["label_format"] == "nifti"
    dialog.accept()
    _wait(qtbot, export)
    assert window.last_error is None, window.last_error
    assert export.summary_box.isVisible()
    assert export.summary_box.text().startswith(f"exported 1 cases to {out}")
    assert (out / "imagesTr" / "sts002_mr_0000.nii.gz").is_file()
    assert (out / "labelsTr" / "sts002_mr.nii.gz").is_file()
    assert json.loads((out / "dataset.json").read_text(encoding="utf-8"))["numTraining"] == 1

    marker = out / "my_notes.txt"  # stands for anything the user put there since
    marker.write_text("keep me unless I say so", encoding="utf-8")
    export.summary_box = None
    export.start(out)
    _wait(qtbot, export)
    prompt = export.overwrite_prompt
    assert prompt is not None and prompt.isVisible()
    assert str(out) in prompt.text() and "Replace" in prompt.text()
    assert marker.exists() and export.summary_box is None  # nothing replaced while asking

    prompt.button(QMessageBox.No).click()
    qtbot.wait(50)
    assert marker.exists() and (export.runner is None or not export.runner.running)
    assert export.summary_box is None

    export.start(out)
    _wait(qtbot, export)
    export.overwrite_prompt.button(QMessageBox.Yes).click()
    _wait(qtbot, export)
    qtbot.waitUntil(lambda: export.summary_box is not None, timeout=60000)
    assert not marker.exists() and (out / "labelsTr" / "sts002_mr.nii.gz").is_file()
    assert window.last_error is None, window.last_error


def test_export_with_nothing_done_says_so(window, qtbot, tmp_path):
    export = window.loop.export
    export.start(tmp_path / "empty_export")
    _wait(qtbot, export)
    assert window.last_error is not None and "nothing to export" in window.last_error
    assert not (tmp_path / "empty_export").exists()
