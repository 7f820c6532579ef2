"""The annotation-queue dock: order and scores as stored, Next case opens the top one."""
from __future__ import annotations

from app.core.active_learning import ScoringContext, get_sampler, scoring_version


def _random_version() -> str:
    return scoring_version(get_sampler("random"), ScoringContext())


def _choose_sampler(window, name: str) -> None:
    combo = window.loop.queue.sampler_combo
    combo.setCurrentIndex(combo.findData(name))


def test_queue_order_matches_stored_scores_and_next_opens_the_top(window, qtbot):
    store, panel = window.store, window.loop.queue
    ids = {r.name: r.id for r in store.list_cases()}
    planted = {"sts002_ct": 0.2, "btp10_pre_t1c": 0.9, "sts002_mr": 0.55}  # lits117_ct left unscored
    for name, score in planted.items():
        store.set_score(ids[name], "random", _random_version(), score)
    _choose_sampler(window, "random")
    panel.refresh()
    assert panel.displayed() == [("btp10_pre_t1c", "0.9"), ("sts002_mr", "0.55"), ("sts002_ct", "0.2"),
                                 ("lits117_ct", "not scored")]
    assert "3 scored, 1 not scored" in panel.info_label.text()

    assert window.open_case_id(ids["sts002_ct"])  # Next skips the open case: start from another one
    panel.next_button.click()
    assert window.case is not None and window.case.name == "btp10_pre_t1c", window.last_error

    # a case marked done leaves the queue; N (the shortcut's action) then opens the next one
    store.set_status(ids["btp10_pre_t1c"], "done")
    window.refresh_case_list()
    qtbot.waitUntil(lambda: panel.displayed()[0][0] == "sts002_mr", timeout=3000)
    assert [name for name, _ in panel.displayed()] == ["sts002_mr", "sts002_ct", "lits117_ct"]
    window.actions["next_case"].trigger()
    assert window.case.name == "sts002_mr"
    assert window.actions["next_case"].shortcut().toString() == "N"

    window.grab().save("/tmp/segloop_queue_panel.png")


def test_scores_of_another_sampler_are_not_mixed_in(window):
    store, panel = window.store, window.loop.queue
    first = store.list_cases()[0]
    store.set_score(first.id, "random", "some-older-version", 5.0)
    _choose_sampler(window, "random")
    panel.refresh()
    assert all(score == "not scored" for _, score in panel.displayed())
    shown = window.case
    assert not panel.open_next() and window.case is shown
    assert "queue is empty" in window.last_message


def test_uncertainty_map_and_strip_for_the_open_case(window, qtbot, tmp_path, volumes, monkeypatch):
    from PyQt5.QtCore import QPoint, Qt
    from PyQt5.QtTest import QTest

    from app.gui import uncertainty_strip_widget
    from tests.gui.helpers import cropped_case, wait_for_models

    monkeypatch.setattr(uncertainty_strip_widget, "MC_SAMPLES", 2)  # the wiring, not the statistics

    wait_for_models(qtbot, window)
    assert window.open_file(cropped_case(tmp_path, volumes, "sts002_mr", 12, 18)), window.last_error
    uncertainty = window.loop.uncertainty
    window.actions["toggle_uncertainty"].trigger()  # U
    qtbot.waitUntil(lambda: uncertainty.result is not None or window.last_error is not None, timeout=90000)
    assert window.last_error is None, window.last_error
    view, strip = window.slice_view, uncertainty.strip
    shown = view.displayed_layer("uncertainty")
    assert shown is not None and shown.shape[:2] == view.state.slice_of(view.image).shape
    assert strip.profile is not None and len(strip.profile) == 6 and strip.profile.max() > 0

    # a click on the strip's last bar goes to the last slice (axial view)
    strip.resize(600, 40)
    QTest.mouseClick(strip, Qt.LeftButton, pos=QPoint(599, 20))
    assert view.state.slice_index == 5 and strip.current == 5

    window.actions["toggle_uncertainty"].trigger()
    assert view.displayed_layer("uncertainty") is None


def test_score_cases_button_stores_and_shows_scores(window, qtbot):
    panel = window.loop.queue
    _choose_sampler(window, "random")  # needs no model: the wiring, in a second
    panel.score_button.click()
    qtbot.waitUntil(lambda: panel.runner is not None and not panel.runner.running, timeout=30000)
    assert window.last_error is None, window.last_error
    stored = window.store.scores("random", _random_version())
    open_ids = [r.id for r in window.store.list_cases() if r.status != "done"]
    assert sorted(stored) == sorted(open_ids)
    names = {r.id: r.name for r in window.store.list_cases()}
    expected = sorted(open_ids, key=lambda i: (-stored[i], names[i]))
    assert [name for name, _ in panel.displayed()] == [names[i] for i in expected]
    assert all(score != "not scored" for _, score in panel.displayed())
