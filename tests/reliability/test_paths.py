"""Non-ASCII and space-containing paths through every layer that writes or reads files: volume IO,
DICOM folders, case discovery, the case store, the session (log, autosave, save, recovery), the
export, the GUI's open path, and an ASCII-locale child process (as on CI)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from app.core.autosave import find_recoverable, restore
from app.core.case_discovery import discover_cases
from app.core.case_store import CaseStore
from app.core.export import export_job
from app.core.jobs import run_job
from app.core.session import AnnotationSession
from app.core.volume_io import read_label, read_volume, write_label
from tests.reliability.corpus import DATA, REPO, _dicom_slices

NAMES = ["Données patient ü/病例 1 ✓", "with space/and  double  space", "Ελληνικά/ø å"]
CASE = "Fall ß – 1"


def _case_folder(root, sub):
    folder = root / sub
    folder.mkdir(parents=True)
    shutil.copy(DATA / "sts002_mr.nii.gz", folder / f"{CASE}.nii.gz")
    shutil.copy(DATA / "sts002_mr_label.nii.gz", folder / f"{CASE}_label.nii.gz")
    return folder


@pytest.mark.parametrize("sub", NAMES)
def test_io_discovery_and_store(tmp_path, sub):
    folder = _case_folder(tmp_path, sub)
    image = read_volume(folder / f"{CASE}.nii.gz")
    label = read_label(folder / f"{CASE}_label.nii.gz", image)
    out = write_label(label.array, image, folder / "ärger ü" / f"{CASE} out.nii.gz")
    assert np.array_equal(read_label(out, image).array, label.array)
    (found,) = discover_cases(folder)
    assert found.name == CASE and found.reference_label_path.name == f"{CASE}_label.nii.gz"
    with CaseStore(tmp_path / sub / "résultats" / "segloop.db") as store:
        record = store.add_case(found.image_path, found.reference_label_path)
        assert store.find_by_image(folder / f"{CASE}.nii.gz").id == record.id
    with CaseStore(tmp_path / sub / "résultats" / "segloop.db") as store:
        assert [r.name for r in store.list_cases()] == [CASE]


def test_dicom_series_in_a_non_ascii_folder(tmp_path):
    _dicom_slices(tmp_path / "Séries ü 1", "1.2.3.4.7", 0)
    volume = read_volume(tmp_path / "Séries ü 1")
    assert volume.shape == (3, 8, 8) and volume.modality == "CT"


def test_session_recovery_and_export(tmp_path):
    folder = _case_folder(tmp_path, NAMES[0])
    image = read_volume(folder / f"{CASE}.nii.gz")
    results = tmp_path / "résultats ü"
    session = AnnotationSession(image, engine="geodesic-nearest", autosave_dir=results / "autosave")
    session.click(0, 17, (45, 57), True)
    session.brush(0, 18, [[20, 20], [24, 30]], 3.0)
    session.autosave.flush()
    expected = session.label.copy()
    session.close()                                    # closed without saving: recoverable
    (found,) = find_recoverable(results / "autosave")
    assert found.image_path == (folder / f"{CASE}.nii.gz").resolve()
    restored = restore(found)
    assert np.array_equal(restored.label, expected)
    saved = restored.save(results / "labels" / f"{CASE}.nii.gz")
    restored.close()
    assert find_recoverable(results / "autosave") == []
    with CaseStore(results / "segloop.db") as store:
        record = store.add_case(folder / f"{CASE}.nii.gz")
        store.set_label(record.id, saved)
        store.set_status(record.id, "done")
        summary = run_job(export_job(store, tmp_path / "Export ü 2"))
    assert summary.exported
    labels = list((tmp_path / "Export ü 2" / "labelsTr").glob("*.nii.gz"))
    images = list((tmp_path / "Export ü 2" / "imagesTr").glob("*.nii.gz"))
    assert len(labels) == len(images) == 1
    exported = read_volume(images[0])
    assert np.array_equal(read_label(labels[0], exported).array, expected)


def test_ascii_locale_child_reads_and_writes_non_ascii_paths(tmp_path):
    folder = _case_folder(tmp_path, NAMES[0])
    script = ("import sys; from pathlib import Path; from app.core.volume_io import read_volume, write_label;"
              "from app.core.case_store import CaseStore;"
              "p = Path(sys.argv[1]); v = read_volume(p / 'Fall ß – 1.nii.gz');"
              "write_label((v.array > 0).astype('uint8'), v, p / 'aus ü.nii.gz');"
              "s = CaseStore(p / 'db ü' / 'segloop.db'); s.add_case(p / 'Fall ß – 1.nii.gz'); s.close();"
              "print('OK', v.shape)")
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONIOENCODING="utf-8")
    env.pop("PYTHONUTF8", None)
    done = subprocess.run([sys.executable, "-c", script, str(folder)], cwd=REPO, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("OK"), done.stderr[-2000:]
    assert (folder / "aus ü.nii.gz").exists()


def test_gui_opens_a_non_ascii_path(window, tmp_path):
    folder = _case_folder(tmp_path, NAMES[0])
    assert window.open_file(folder / f"{CASE}.nii.gz"), window.last_error
    assert window.case.name == CASE
    assert CASE in " ".join(window.case_list.row_texts())
