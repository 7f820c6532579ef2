"""Batch pre-labelling runs on the GUI's job worker while the event loop keeps turning: a 20 ms
QTimer on the GUI thread never waits more than 200 ms between ticks. A bound on blocking (a job
that held the GIL or ran on the GUI thread would break it), not a speed claim."""
from __future__ import annotations

import time

import pytest

from app.core.batch import prelabel_job
from app.core.jobs import CancelToken
from tests.reliability.corpus import DATA

CASES = ("sts002_mr", "sts002_ct")
MAX_STALL_MS = 200.0


def measure_stalls(window, qtbot, out_dir, model: str) -> tuple[float, object, float]:
    """(largest gap between 20 ms ticks in ms, the job's summary, seconds the job ran)."""
    from PyQt5.QtCore import QTimer

    from app.gui.workers import run_in_background

    ticks: list[float] = []
    timer = QTimer(window)
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    qtbot.wait(300)                                   # the loop idles normally first
    outcome = {}
    token = CancelToken()
    job = prelabel_job([(name, DATA / f"{name}.nii.gz") for name in CASES], model, out_dir, cancel=token)
    start = time.perf_counter()
    first_tick = len(ticks)
    runner = run_in_background(job, token, window, title="Pre-labelling…",
                               on_result=lambda summary: outcome.setdefault("summary", summary),
                               on_error=lambda error: outcome.setdefault("error", error))
    qtbot.waitUntil(lambda: bool(outcome), timeout=300_000)
    seconds = time.perf_counter() - start
    qtbot.waitUntil(lambda: not runner.running, timeout=10_000)
    timer.stop()
    during = ticks[max(first_tick - 1, 0):]
    gaps = [(b - a) * 1e3 for a, b in zip(during, during[1:])]
    assert "error" not in outcome, outcome.get("error")
    return max(gaps), outcome["summary"], seconds


def test_prelabelling_in_the_background_never_stalls_the_gui(window, qtbot, tmp_path):
    from app.core.segmentation import available_models

    models = available_models()
    if not models:
        pytest.skip("no segmentation model in models/weights")
    stall_ms, summary, seconds = measure_stalls(window, qtbot, tmp_path / "prelabels", models[0])
    assert sorted(summary.done) == sorted(CASES), summary.text()
    assert all((tmp_path / "prelabels" / f"{name}.nii.gz").exists() for name in CASES)
    print(f"max stall {stall_ms:.1f} ms during a {seconds:.1f} s job ({models[0]}, {len(CASES)} cases)")
    assert stall_ms < MAX_STALL_MS, f"the GUI thread stalled {stall_ms:.0f} ms during a {seconds:.1f} s job"
