"""Two SegLoop instances on one results/ folder: writes from both land (or one is told clearly that
the database is busy), a process killed inside a transaction leaves nothing half-written, and a
second main window on the same results/ works beside the first."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from app.core.case_store import CaseStore, StoreBusyError
from tests.reliability.corpus import REPO

HAMMER = r"""
import json, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from app.core.case_store import CaseStore, StoreBusyError
db, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ok, busy, other = [], 0, []
store = CaseStore(db, busy_timeout_s=0.02)
for i in range(n):
    try:
        case = store.add_case(Path(db).parent / f"{{tag}}{{i:04d}}.nii.gz")
        store.record_work(case.id, clicks=1)
        store.set_status(case.id, "in progress")
        ok.append(i)
    except StoreBusyError as error:
        busy += 1
        assert "busy" in str(error)
    except Exception as error:
        other.append(f"{{type(error).__name__}}: {{error}}")
store.close()
print(json.dumps({{"ok": ok, "busy": busy, "other": other}}))
"""


def test_two_processes_with_short_timeouts_only_get_busy_errors(tmp_path):
    db = tmp_path / "results" / "segloop.db"
    CaseStore(db).close()
    script = tmp_path / "hammer.py"
    script.write_text(HAMMER.format(repo=str(REPO)), encoding="utf-8")
    procs = [subprocess.Popen([sys.executable, str(script), str(db), tag, "120"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
             for tag in ("a", "b")]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["other"] == [] for r in results), [r["other"] for r in results]
    with CaseStore(db) as store:
        cases = store.list_cases()
        names = {c.name for c in cases}
        for tag, result in zip("ab", results):
            for i in result["ok"]:                       # every acknowledged write is there, whole
                assert f"{tag}{i:04d}" in names
        assert all(c.status == "in progress" and c.clicks == 1 for c in cases
                   if int(c.name[1:]) in set(results["ab".index(c.name[0])]["ok"]))
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


KILLED_IN_TRANSACTION = r"""
import sys, time
sys.path.insert(0, {repo!r})
from app.core.case_store import CaseStore
store = CaseStore(sys.argv[1])
with store._write() as conn:            # a transaction that never commits
    for i in range(200):
        conn.execute("INSERT INTO cases (name, image_path, modality, created_at, updated_at) "
                     "VALUES (?, ?, 'unknown', 'x', 'x')", (f"half{{i}}", f"/half/{{i}}.nii.gz"))
    print("IN TRANSACTION", flush=True)
    time.sleep(600)
"""


def test_a_process_killed_inside_a_transaction_leaves_nothing_behind(tmp_path):
    db = tmp_path / "results" / "segloop.db"
    with CaseStore(db) as store:
        store.add_case(tmp_path / "kept.nii.gz")
    script = tmp_path / "killed.py"
    script.write_text(KILLED_IN_TRANSACTION.format(repo=str(REPO)), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), str(db)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        assert proc.stdout.readline().strip() == "IN TRANSACTION", proc.stderr.read()
        with CaseStore(db, busy_timeout_s=0.1) as other:   # the writer lock is taken: a clear message
            with pytest.raises(StoreBusyError, match="busy"):
                other.add_case(tmp_path / "blocked.nii.gz")
            assert [c.name for c in other.list_cases()] == ["kept"]   # readers are not blocked (WAL)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    with CaseStore(db) as store:
        assert [c.name for c in store.list_cases()] == ["kept"]
        store.add_case(tmp_path / "after.nii.gz")                   # the lock died with the process
        assert len(store.list_cases()) == 2
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_a_second_window_on_the_same_results_folder(window, qtbot):
    from app.gui.application import build_main_window

    results = window.store.path.parent
    second = build_main_window(None, results)
    qtbot.addWidget(second)
    try:
        assert second.case_list.case_ids() == window.case_list.case_ids()
        first_id = window.case_list.case_ids()[0]
        window.store.set_status(first_id, "done")
        second.refresh_case_list()
        assert second.store.get(first_id).status == "done"
        assert second.open_case_id(first_id), second.last_error
        start = time.monotonic()
        while window.store.get(first_id).status != "done" and time.monotonic() - start < 5:
            time.sleep(0.05)
        assert window.isVisible() and second.case is not None
    finally:
        second.close()
        second.store.close()
