"""The case store on real SQLite files: persistence, validation, upgrades, bad files, two writers."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from app.core.case_store import (APPLICATION_ID, MIGRATIONS, STATUSES, CaseStore, CorruptStoreError,
                                 InvalidStatusError, NewerStoreError, ReadOnlyStoreError,
                                 StoreBusyError, UnknownCaseError)
from app.core.errors import SegLoopError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "results" / "segloop.db"


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def test_everything_survives_close_and_reopen(db, tmp_path):
    with CaseStore(db) as store:
        a = store.add_case(tmp_path / "a.nii.gz", tmp_path / "a_label.nii.gz")
        b = store.add_case(tmp_path / "b.nii.gz", name="second")
        store.set_label(a.id, db.parent / "labels" / "a.nii.gz", status="in progress")
        store.record_work(a.id, clicks=3, seconds=12.5, model_used="unet-v1", annotator="ana")
        store.record_work(a.id, clicks=2, seconds=0.5)
        store.set_status(b.id, "pre-labelled")
        store.set_modality(b.id, "MR")
        store.set_score(a.id, "entropy", "v1", 0.25)
        store.add_annotation(b.id, "bob", tmp_path / "b_bob.nii.gz")
        before = store.list_cases()
    assert db.is_file()
    with CaseStore(db) as store:
        after = store.list_cases()
        assert after == before
        a2 = store.get(a.id)
        assert a2.reference_label_path == (tmp_path / "a_label.nii.gz").resolve()
        assert a2.label_path == (db.parent / "labels" / "a.nii.gz").resolve()
        assert a2.initial_label_path == a2.label_path
        assert (a2.status, a2.clicks, a2.seconds_spent) == ("in progress", 5, 13.0)
        # A later call without a model or annotator keeps the ones recorded before.
        assert (a2.model_used, a2.annotator) == ("unet-v1", "ana")
        b2 = store.get(b.id)
        assert (b2.name, b2.status, b2.modality, b2.initial_label_path) == ("second", "pre-labelled", "MR", None)
        assert store.scores("entropy", "v1") == {a.id: 0.25}
        assert [(n.annotator, n.label_path.name) for n in store.annotations(b.id)] == [("bob", "b_bob.nii.gz")]


def test_paths_are_absolute_and_timestamps_utc(db, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path / "data")
    with CaseStore(db) as store:
        record = store.add_case("x.nii.gz", "x_label.nii.gz")
        assert record.image_path == tmp_path.resolve() / "data" / "x.nii.gz"
        assert record.image_path.is_absolute() and record.reference_label_path.is_absolute()
        assert store.find_by_image(tmp_path / "data" / "x.nii.gz").id == record.id
        assert store.find_by_image(tmp_path / "data" / "missing.nii.gz") is None
        created = datetime.fromisoformat(record.created_at)
        assert created.utcoffset() == timedelta(0)
    assert record.name == "x"


def test_status_is_validated_by_the_code_and_by_the_database(db, tmp_path):
    with CaseStore(db) as store:
        case = store.add_case(tmp_path / "a.nii.gz")
        assert case.status == "new"
        with pytest.raises(InvalidStatusError, match="'finished' is not a case status"):
            store.set_status(case.id, "finished")
        with pytest.raises(InvalidStatusError):
            store.set_label(case.id, tmp_path / "l.nii.gz", status="Done")
        with pytest.raises(InvalidStatusError):
            store.list_cases(status="complete")
        assert store.get(case.id).status == "new"
        assert store.get(case.id).label_path is None  # the failed set_label changed nothing
        for status in STATUSES:
            assert store.set_status(case.id, status).status == status
        assert [c.id for c in store.list_cases(status="done")] == [case.id]
        assert store.list_cases(status="new") == []
        with pytest.raises(UnknownCaseError):
            store.set_status(case.id + 100, "done")
        with pytest.raises(UnknownCaseError):
            store.get(case.id + 100)
    conn = _raw(db)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE cases SET status = 'finished'")
    conn.close()


def test_add_case_is_idempotent_and_keeps_the_work_done(db, tmp_path):
    with CaseStore(db) as store:
        first = store.add_case(tmp_path / "a.nii.gz")
        store.set_status(first.id, "in progress")
        store.record_work(first.id, clicks=4)
        # The same file spelled differently, now with a label found beside it.
        again = store.add_case(tmp_path / "sub" / ".." / "a.nii.gz", tmp_path / "a_label.nii.gz", name="other")
        assert again.id == first.id
        assert again.name == "a"
        assert again.reference_label_path == (tmp_path / "a_label.nii.gz").resolve()
        assert (again.status, again.clicks) == ("in progress", 4)
        # Re-adding without a label does not forget the one found before.
        assert store.add_case(tmp_path / "a.nii.gz").reference_label_path is not None
        assert len(store.list_cases()) == 1


def test_list_is_sorted_by_name(db, tmp_path):
    with CaseStore(db) as store:
        for name in ("c", "a", "b"):
            store.add_case(tmp_path / f"{name}.nii.gz")
        assert [c.name for c in store.list_cases()] == ["a", "b", "c"]


def test_scores_are_kept_per_sampler_and_model_version(db, tmp_path):
    with CaseStore(db) as store:
        a = store.add_case(tmp_path / "a.nii.gz")
        b = store.add_case(tmp_path / "b.nii.gz")
        store.set_score(a.id, "entropy", "v1", 0.9)
        store.set_score(b.id, "entropy", "v1", 0.1)
        store.set_score(a.id, "entropy", "v2", 0.3)
        store.set_score(a.id, "mc_dropout", "v1", 0.7)
        store.set_score(b.id, "entropy", "v1", 0.2)  # recomputed: replaces
        assert store.scores("entropy", "v1") == {a.id: 0.9, b.id: 0.2}
        assert store.scores("entropy", "v2") == {a.id: 0.3}
        assert store.scores("random", "v1") == {}
        with pytest.raises(UnknownCaseError):
            store.set_score(999, "entropy", "v1", 0.5)


def test_one_annotation_per_annotator_per_case(db, tmp_path):
    with CaseStore(db) as store:
        a = store.add_case(tmp_path / "a.nii.gz")
        store.add_annotation(a.id, "zoe", tmp_path / "zoe1.nii.gz")
        store.add_annotation(a.id, "adam", tmp_path / "adam.nii.gz")
        store.add_annotation(a.id, "zoe", tmp_path / "zoe2.nii.gz")
        got = [(n.annotator, n.label_path.name) for n in store.annotations(a.id)]
        assert got == [("adam", "adam.nii.gz"), ("zoe", "zoe2.nii.gz")]
        with pytest.raises(UnknownCaseError):
            store.add_annotation(999, "zoe", tmp_path / "x.nii.gz")


def test_new_database_is_wal_versioned_and_marked_as_ours(db):
    CaseStore(db).close()
    conn = _raw(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_a_version_1_database_is_upgraded_and_keeps_its_cases(db, tmp_path):
    # Made by hand as the first release wrote it: the cases table only.
    db.parent.mkdir(parents=True)
    conn = _raw(db)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("""CREATE TABLE cases (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
        image_path TEXT NOT NULL UNIQUE, reference_label_path TEXT, label_path TEXT,
        status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new','pre-labelled','in progress','done')),
        modality TEXT NOT NULL DEFAULT 'unknown', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        annotator TEXT, model_used TEXT, seconds_spent REAL NOT NULL DEFAULT 0,
        clicks INTEGER NOT NULL DEFAULT 0)""")
    image = str((tmp_path / "old.nii.gz").resolve())
    conn.execute("INSERT INTO cases (id, name, image_path, status, created_at, updated_at, clicks) "
                 "VALUES (7, 'old', ?, 'done', '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00', 42)",
                 (image,))
    conn.execute("PRAGMA user_version = 1")
    conn.close()

    with CaseStore(db) as store:
        assert store.schema_version == len(MIGRATIONS)
        old = store.get(7)
        assert (old.name, old.status, old.clicks, old.image_path) == ("old", "done", 42, Path(image))
        store.set_score(7, "entropy", "v1", 0.5)  # a table the upgrade added
        store.add_annotation(7, "ana", tmp_path / "ana.nii.gz")
        assert store.scores("entropy", "v1") == {7: 0.5}


def test_a_later_migration_upgrades_an_existing_database(db, tmp_path):
    with CaseStore(db) as store:
        case = store.add_case(tmp_path / "a.nii.gz")
    later = MIGRATIONS + [("ALTER TABLE cases ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",)]
    with CaseStore(db, migrations=later) as store:
        assert store.schema_version == len(MIGRATIONS) + 1
        assert store.get(case.id).name == "a"
    conn = _raw(db)
    assert conn.execute("SELECT priority FROM cases").fetchall() == [(0,)]
    conn.close()


def test_a_failing_migration_leaves_the_database_at_its_previous_version(db, tmp_path):
    with CaseStore(db) as store:
        store.add_case(tmp_path / "a.nii.gz")
    broken = MIGRATIONS + [("CREATE TABLE half_done (x)", "INSERT INTO no_such_table VALUES (1)")]
    with pytest.raises(sqlite3.OperationalError):
        CaseStore(db, migrations=broken)
    conn = _raw(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
    conn.close()
    with CaseStore(db) as store:
        assert [c.name for c in store.list_cases()] == ["a"]


def test_a_text_file_named_segloop_db_is_refused_untouched(db):
    db.parent.mkdir(parents=True)
    db.write_text("these are my notes, not a database\n" * 20, encoding="utf-8")
    with pytest.raises(CorruptStoreError, match="not a readable SegLoop case database"):
        CaseStore(db)
    assert db.read_text(encoding="utf-8").startswith("these are my notes")


def test_another_programs_database_is_refused_untouched(db):
    db.parent.mkdir(parents=True)
    conn = _raw(db)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    conn.close()
    with pytest.raises(CorruptStoreError, match="another program"):
        CaseStore(db)
    conn = _raw(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["invoices"]
    conn.close()


def test_a_folder_named_segloop_db_is_refused(db):
    db.mkdir(parents=True)
    with pytest.raises(CorruptStoreError, match="is a folder"):
        CaseStore(db)


def test_a_database_from_a_newer_segloop_is_refused_untouched(db, tmp_path):
    with CaseStore(db) as store:
        store.add_case(tmp_path / "a.nii.gz")
    conn = _raw(db)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 3}")
    conn.close()
    with pytest.raises(NewerStoreError, match="newer SegLoop"):
        CaseStore(db)
    conn = _raw(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 3
    conn.close()


def test_two_stores_on_one_file_interleave_writes(db, tmp_path):
    one, two = CaseStore(db), CaseStore(db)
    try:
        a = one.add_case(tmp_path / "a.nii.gz")
        b = two.add_case(tmp_path / "b.nii.gz")
        for i in range(10):
            one.record_work(b.id, clicks=1)
            two.record_work(a.id, clicks=2)
            one.set_score(a.id, "entropy", "v1", i)
            two.set_score(b.id, "entropy", "v1", -i)
        two.set_status(a.id, "done")
        # Each sees the other's writes at once, and the same image is one case for both.
        assert one.get(a.id).status == "done"
        assert (one.get(a.id).clicks, two.get(b.id).clicks) == (20, 10)
        assert one.scores("entropy", "v1") == {a.id: 9.0, b.id: -9.0}
        assert two.add_case(tmp_path / "a.nii.gz").id == a.id
    finally:
        one.close()
        two.close()


def test_a_writer_holding_the_lock_gives_a_clear_busy_error(db, tmp_path):
    with CaseStore(db) as store:
        case = store.add_case(tmp_path / "a.nii.gz")
    other = _raw(db)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE cases SET clicks = 99")
    try:
        with CaseStore(db, busy_timeout_s=0.2) as store:
            assert store.get(case.id).clicks == 0  # WAL: reading is never blocked by a writer
            with pytest.raises(StoreBusyError, match="another SegLoop is writing"):
                store.set_status(case.id, "done")
            other.execute("COMMIT")
            assert store.set_status(case.id, "done").clicks == 99
    finally:
        other.close()


_CHILD = """
import sys
from pathlib import Path
from app.core.case_store import CaseStore
db, folder = Path(sys.argv[1]), Path(sys.argv[2])
with CaseStore(db) as store:
    for i in range(60):
        case = store.add_case(folder / f"child{i:03d}.nii.gz")
        store.record_work(case.id, clicks=1)
        store.add_case(folder / f"shared{i % 5}.nii.gz")
print("child ok")
"""


def test_a_second_process_writing_at_the_same_time_corrupts_nothing(db, tmp_path):
    CaseStore(db).close()
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(db), str(tmp_path)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8")
    with CaseStore(db) as store:
        for i in range(60):
            case = store.add_case(tmp_path / f"parent{i:03d}.nii.gz")
            store.record_work(case.id, clicks=2)
            store.add_case(tmp_path / f"shared{i % 5}.nii.gz")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert out.strip() == "child ok"
    with CaseStore(db) as store:
        cases = store.list_cases()
        names = [c.name for c in cases]
        assert len(cases) == 125 and len(set(c.image_path for c in cases)) == 125
        assert names.count("shared0") == 1
        assert sum(c.clicks for c in cases) == 60 * 1 + 60 * 2
    conn = _raw(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_one_store_can_be_used_from_worker_threads(db, tmp_path):
    with CaseStore(db) as store:
        case = store.add_case(tmp_path / "a.nii.gz")
        errors = []

        def work():
            try:
                for _ in range(25):
                    store.record_work(case.id, clicks=1, seconds=0.5)
            except Exception as exc:  # surfaced below: an assertion in a thread would be lost
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert (store.get(case.id).clicks, store.get(case.id).seconds_spent) == (100, 50.0)


def test_a_results_path_that_cannot_be_a_folder_is_our_error(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results folder should be", encoding="utf-8")
    with pytest.raises(ReadOnlyStoreError, match="cannot create the results folder"):
        CaseStore(blocker / "segloop.db")


def test_a_read_only_results_folder_is_our_error(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running with privileges that ignore folder permissions (root)")
        with pytest.raises(ReadOnlyStoreError, match="read-only"):
            CaseStore(folder / "segloop.db")
    finally:
        folder.chmod(0o755)


def test_errors_are_segloop_errors():
    for cls in (CorruptStoreError, NewerStoreError, ReadOnlyStoreError, StoreBusyError,
                InvalidStatusError, UnknownCaseError):
        assert issubclass(cls, SegLoopError)


def test_add_cases_registers_a_discovered_folder_in_one_go(db):
    from app.core.case_discovery import discover_cases
    found = discover_cases(REPO / "data_source")
    with CaseStore(db) as store:
        first = store.add_cases(found)
        assert [(r.name, r.image_path, r.reference_label_path) for r in first] == \
            [(c.name, c.image_path, c.reference_label_path) for c in found]
        assert all(r.status == "new" and r.initial_label_path == r.reference_label_path for r in first)
        store.set_status(first[0].id, "done")
        again = store.add_cases(found)  # a rescan of the same folder changes nothing
        assert [r.id for r in again] == [r.id for r in first]
        assert again[0].status == "done" and len(store.list_cases()) == 4
