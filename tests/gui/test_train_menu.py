"""Train > Retrain model…: the real `python main.py train` in a child process; Cancel kills it and
the previous model stays active; a finished run becomes the active model."""
from __future__ import annotations

from PyQt5.QtCore import QProcess
from PyQt5.QtWidgets import QPushButton

from app.gui.train_dialog import TrainSettings
from tests.gui.helpers import wait_for_models


def _mark_done(window, *names):
    for record in window.store.list_cases():
        if record.name in names:
            window.store.set_status(record.id, "done")


def test_cancel_kills_the_child_and_keeps_the_previous_model(window, qtbot, tmp_path):
    wait_for_models(qtbot, window)
    trainer, combo = window.loop.trainer, window.annotation.model_combo
    before = combo.currentData()
    _mark_done(window, "sts002_mr")
    # long enough that it cannot finish before Cancel
    assert trainer.start(TrainSettings(epochs=200, steps_per_epoch=200, batch_size=2, max_minutes=30,
                                       input_size=32))
    qtbot.waitUntil(lambda: trainer.state == "training" and trainer.process is not None and
                    trainer.process.state() == QProcess.Running, timeout=60000)
    arguments = trainer.process.arguments()
    assert arguments[0].endswith("main.py") and arguments[1] == "train" and "--init" in arguments
    qtbot.waitUntil(lambda: any(line.startswith("unet:") for line in trainer.output), timeout=60000)

    trainer.progress.findChild(QPushButton).click()  # the progress dialog's Cancel button
    qtbot.waitUntil(lambda: trainer.state == "cancelled", timeout=20000)
    assert trainer.process.state() == QProcess.NotRunning
    assert combo.currentData() == before
    assert "previous model stays active" in window.last_message
    user_dir = tmp_path / "results" / "models" / "user"
    assert not user_dir.exists() or list(user_dir.iterdir()) == []

    from app.core.segmentation import load_model

    assert load_model(before) is not None  # still loads and works


def test_a_finished_run_becomes_the_active_model(window, qtbot, tmp_path):
    wait_for_models(qtbot, window)
    trainer, combo = window.loop.trainer, window.annotation.model_combo
    _mark_done(window, "sts002_mr", "btp10_pre_t1c")
    # the queue is in use: a score of the old model is stored and shown
    panel = window.loop.queue
    panel.sampler_combo.setCurrentIndex(panel.sampler_combo.findData("mc-variance"))
    open_case = next(r for r in window.store.list_cases() if r.status != "done")
    window.store.set_score(open_case.id, "mc-variance", panel.version(), 0.777)
    panel.refresh()
    assert ("%s" % open_case.name, "0.777") in panel.displayed()
    assert trainer.start(TrainSettings(epochs=1, steps_per_epoch=1, batch_size=2, max_minutes=2, input_size=32))
    qtbot.waitUntil(lambda: trainer.state in ("finished", "failed"), timeout=120000)
    assert trainer.state == "finished", window.last_error
    weights = combo.currentData()
    assert weights.endswith(".pt") and "models/user/unet-" in weights
    from pathlib import Path

    assert Path(weights).is_file() and Path(weights).with_suffix(".json").is_file()
    assert any(line.startswith("epoch") for line in trainer.output)
    assert "now the active model" in trainer.summary_box.informativeText()

    # the old model's score is gone from the queue, and rescoring with the new model has started
    assert all(score != "0.777" for _, score in panel.displayed())
    assert panel.runner is not None and panel.runner.running
    panel.runner.cancel()
    qtbot.waitUntil(lambda: not panel.runner.running, timeout=60000)
