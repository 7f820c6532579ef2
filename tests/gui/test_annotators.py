"""Several annotators: import stores each label, preferences name the user, the consensus overlay
shows the majority of the planted annotations."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from app.core.volume_io import write_label
from app.gui.overlay import contour_mask
from tests.gui.helpers import open_case


def _wait(qtbot, annotators):
    qtbot.waitUntil(lambda: annotators.runner is not None and not annotators.runner.running, timeout=60000)


def test_import_stores_annotations_and_consensus_shows_their_majority(window, qtbot, tmp_path, volumes):
    image, reference = volumes["sts002_mr"]
    open_case(window, "sts002_mr")
    annotators = window.loop.annotators
    a = (reference.array > 0).astype(np.uint8)
    b = ndimage.binary_erosion(a, iterations=3).astype(np.uint8)
    b[:, :5, :5] = 1  # a corner only bob marked
    for name, mask in (("alice", a), ("bob", b)):
        write_label(mask, image, tmp_path / f"{name}.nii.gz")
        assert annotators.import_annotation(tmp_path / f"{name}.nii.gz", name), window.last_error

    stored = window.store.annotations(window.case.case_id)
    assert [s.annotator for s in stored] == ["alice", "bob"]
    assert all(s.label_path.is_file() and "annotations" in s.label_path.parts for s in stored)
    assert "2 annotators" in window.last_message

    window.actions["consensus_majority"].trigger()
    _wait(qtbot, annotators)
    # two annotators: a voxel is foreground when at least half say so (ties go to the structure)
    expected = np.maximum(a, b)
    np.testing.assert_array_equal(annotators.consensus, expected)
    view = window.slice_view
    shown = view.displayed_layer("consensus")
    assert shown is not None
    np.testing.assert_array_equal(shown[..., 3] > 0, contour_mask(view.state.slice_of(expected)))
    assert "Majority vote of 2 annotations" in window.last_message

    window.actions["consensus_staple"].trigger()
    _wait(qtbot, annotators)
    assert annotators.method == "staple" and annotators.consensus is not None
    both = (a == 1) & (b == 1)
    assert annotators.consensus[both].all() and not annotators.consensus[(a == 0) & (b == 0)].any()

    window.actions["consensus_off"].trigger()
    assert view.displayed_layer("consensus") is None and not view.has_layer("consensus")


def test_a_label_of_another_grid_is_refused(window, tmp_path, volumes):
    from app.core.volume import Volume

    open_case(window, "sts002_mr")
    image, label = volumes["sts002_mr"]
    fewer = Volume(np.ascontiguousarray(image.array[:10]), image.spacing, image.origin, image.direction)
    write_label(np.ascontiguousarray(label.array[:10]), fewer, tmp_path / "short.nii.gz")
    assert not window.loop.annotators.import_annotation(tmp_path / "short.nii.gz", "alice")
    assert window.last_error and window.store.annotations(window.case.case_id) == []


def test_preferences_name_the_annotator_and_persist(window, tmp_path, volumes):
    from app.gui.annotators import current_user

    dialog = window.loop.annotators.ask_preferences()
    dialog.name_edit.setText("carol")
    dialog.accept()
    assert current_user(window) == "carol"
    ini = (tmp_path / "results" / "segloop.ini").read_text(encoding="utf-8")
    assert "name=carol" in ini

    image, reference = volumes["sts002_mr"]
    open_case(window, "sts002_mr")
    write_label(reference.array, image, tmp_path / "mine.nii.gz")
    assert window.loop.annotators.import_annotation(tmp_path / "mine.nii.gz")
    assert [a.annotator for a in window.store.annotations(window.case.case_id)] == ["carol"]
