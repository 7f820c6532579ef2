"""The case list and its work record, kept in one SQLite file under results/ (e.g. results/segloop.db).

Why SQLite and these settings: two SegLoop windows may open the same results/ folder, a batch job may
write from a worker thread while the GUI reads, and a crash must never leave a half-written record.
So: WAL journal (readers never block the writer), a busy timeout (a second writer waits instead of
failing at once), every write in a `BEGIN IMMEDIATE` transaction (the write lock is taken up front,
so two writers never deadlock upgrading a read lock), foreign keys on, and `synchronous=FULL`
(a committed change survives a power cut; our write rate is a few per minute, so the fsync is free).

The schema is versioned with `PRAGMA user_version`: MIGRATIONS[i] brings a database from version i to
i + 1. A later issue appends one entry; an older database is upgraded in order, each step in its own
transaction, so a failing step leaves the file exactly at the previous version.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from app.core.errors import SegLoopError
from app.core.volume import case_name

STATUSES = ("new", "pre-labelled", "in progress", "done")  # also a CHECK in the schema: change both
# 'SGLP': marks the file as ours, so a foreign SQLite file named segloop.db is refused, not altered.
APPLICATION_ID = 0x53474C50
DEFAULT_BUSY_TIMEOUT_S = 5.0


class StoreError(SegLoopError):
    """The case database cannot be used as it is."""


class CorruptStoreError(StoreError):
    """Not an SQLite file, damaged, or another program's database."""


class NewerStoreError(StoreError):
    """Written by a newer SegLoop whose schema this code does not know."""


class ReadOnlyStoreError(StoreError):
    """The results folder or the database file cannot be written."""


class StoreBusyError(StoreError):
    """Another connection held the write lock for longer than the busy timeout."""


class InvalidStatusError(StoreError, ValueError):
    pass


class UnknownCaseError(StoreError, LookupError):
    pass


# Each entry takes the database from version i to i + 1; statements run inside one transaction.
# v1: the case list (issue 2). v2: per-case sampler scores (active learning) and per-annotator labels.
# A shipped entry is never edited (old files were made by it): change the schema with a new entry.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        f"PRAGMA application_id = {APPLICATION_ID}",
        """CREATE TABLE cases (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            image_path TEXT NOT NULL UNIQUE,
            reference_label_path TEXT,
            label_path TEXT,
            status TEXT NOT NULL DEFAULT 'new'
                CHECK (status IN ('new', 'pre-labelled', 'in progress', 'done')),
            modality TEXT NOT NULL DEFAULT 'unknown',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            annotator TEXT,
            model_used TEXT,
            seconds_spent REAL NOT NULL DEFAULT 0,
            clicks INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX cases_by_status ON cases (status)",
    ),
    (
        """CREATE TABLE scores (
            case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            sampler TEXT NOT NULL,
            model_version TEXT NOT NULL,
            score REAL NOT NULL,
            computed_at TEXT NOT NULL,
            PRIMARY KEY (case_id, sampler, model_version))""",
        """CREATE TABLE annotations (
            case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            annotator TEXT NOT NULL,
            label_path TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (case_id, annotator))""",
    ),
]


@dataclass(frozen=True)
class CaseRecord:
    id: int
    name: str
    image_path: Path
    reference_label_path: Path | None
    label_path: Path | None
    status: str
    modality: str
    created_at: str
    updated_at: str
    annotator: str | None
    model_used: str | None
    seconds_spent: float
    clicks: int

    @property
    def initial_label_path(self) -> Path | None:
        """What to overlay when the case opens: our own work if any, else the label that came with it."""
        return self.label_path or self.reference_label_path


@dataclass(frozen=True)
class Annotation:
    case_id: int
    annotator: str
    label_path: Path
    created_at: str


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _abs(path: str | os.PathLike) -> str:
    return str(Path(path).expanduser().resolve())


def _opt_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _record(row: sqlite3.Row) -> CaseRecord:
    return CaseRecord(
        id=row["id"], name=row["name"], image_path=Path(row["image_path"]),
        reference_label_path=_opt_path(row["reference_label_path"]),
        label_path=_opt_path(row["label_path"]), status=row["status"], modality=row["modality"],
        created_at=row["created_at"], updated_at=row["updated_at"], annotator=row["annotator"],
        model_used=row["model_used"], seconds_spent=float(row["seconds_spent"]), clicks=int(row["clicks"]))


def _validate_status(status: str) -> str:
    if status not in STATUSES:
        raise InvalidStatusError(f"'{status}' is not a case status; use one of {', '.join(STATUSES)}.")
    return status


class CaseStore:
    """One connection to the case database; safe to share between threads (calls are serialised)."""

    def __init__(self, path: str | os.PathLike, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
                 migrations: list[tuple[str, ...]] | None = None):
        self.path = Path(path).expanduser().resolve()
        self._migrations = MIGRATIONS if migrations is None else migrations
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._check_folder()
        with self._translate():
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing commits behind our back.
            conn = sqlite3.connect(str(self.path), timeout=busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
        self._conn = conn
        conn.row_factory = sqlite3.Row
        try:
            with self._translate():
                conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
                conn.execute("PRAGMA foreign_keys = ON")
                self._check_identity()
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
                conn.execute("PRAGMA synchronous = FULL")
                self._migrate()
        except BaseException:
            conn.close()
            self._conn = None
            raise

    def _check_folder(self) -> None:
        folder = self.path.parent
        if self.path.is_dir():
            raise CorruptStoreError(f"{self.path} is a folder, not a case database file; "
                                    "choose another results folder.")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReadOnlyStoreError(
                f"cannot create the results folder {folder} ({exc.strerror or exc}); "
                "choose a folder you can write to.") from None
        # WAL needs to create -wal and -shm files next to the database, even just to read it.
        if not os.access(folder, os.W_OK | os.X_OK) or (self.path.exists()
                                                       and not os.access(self.path, os.R_OK | os.W_OK)):
            raise ReadOnlyStoreError(
                f"the results folder {folder} (or its {self.path.name}) is read-only; SegLoop needs to "
                "write its case database there. Choose a folder you can write to.")

    def _check_identity(self) -> None:
        app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        has_tables = self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
        if app_id == APPLICATION_ID or (app_id == 0 and version == 0 and not has_tables):
            return
        raise CorruptStoreError(
            f"{self.path} is an SQLite database of another program, not a SegLoop case database; "
            "move it away or choose another results folder.")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        target = len(self._migrations)
        self._check_not_newer(self.schema_version, target)
        # Up to date: no write lock needed, so opening never waits for another instance's writes.
        while self.schema_version < target:
            with self._write() as conn:
                # Read the version again under the write lock: another instance may have just upgraded.
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                self._check_not_newer(version, target)
                if version < target:
                    for statement in self._migrations[version]:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {version + 1}")

    def _check_not_newer(self, version: int, target: int) -> None:
        if version > target:
            raise NewerStoreError(
                f"{self.path} was written by a newer SegLoop (database version {version}; this one "
                f"knows up to {target}). Update SegLoop or use another results folder.")

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn SQLite's failures into errors that tell the user what is wrong and what to do."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "locked" in text or "busy" in text:
                raise StoreBusyError(
                    f"the case database {self.path} is busy (another SegLoop is writing to it); "
                    "try again in a moment.") from None
            if "readonly" in text or "read-only" in text or "unable to open" in text:
                raise ReadOnlyStoreError(
                    f"the case database {self.path} cannot be written ({exc}); check that the results "
                    "folder is writable.") from None
            if "disk is full" in text or "disk i/o" in text:
                raise StoreError(f"writing the case database {self.path} failed ({exc}).") from None
            raise
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError)):
                raise
            raise CorruptStoreError(
                f"{self.path} is not a readable SegLoop case database ({exc}); move it away and "
                "SegLoop will start a new one.") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._translate():
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # SQLite may already have rolled back by itself (e.g. on a full disk).
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock, self._translate():
            return self._conn.execute(sql, params).fetchall()

    def _update_case(self, case_id: int, assignments: str, params: tuple) -> CaseRecord:
        with self._write() as conn:
            cursor = conn.execute(f"UPDATE cases SET {assignments}, updated_at = ? WHERE id = ?",
                                  (*params, _now(), case_id))
            if cursor.rowcount == 0:
                raise UnknownCaseError(f"there is no case with id {case_id} in {self.path.name}.")
            return _record(conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,)).fetchone())

    def add_case(self, image_path: str | os.PathLike, reference_label_path: str | os.PathLike | None = None,
                 name: str | None = None, modality: str = "unknown") -> CaseRecord:
        """Register an image (idempotent): the same image path returns its existing record, taking
        a reference label found since; a known case's name, status and work are never reset."""
        with self._write() as conn:
            return self._add(conn, image_path, reference_label_path, name, modality)

    def add_cases(self, cases: Iterable) -> list[CaseRecord]:
        """add_case for many (e.g. discover_cases' DiscoveredCase list: anything with image_path,
        reference_label_path and name) in one transaction: one disk sync instead of one per case."""
        with self._write() as conn:
            return [self._add(conn, c.image_path, c.reference_label_path, c.name, "unknown") for c in cases]

    def _add(self, conn: sqlite3.Connection, image_path, reference_label_path, name, modality) -> CaseRecord:
        image = _abs(image_path)
        reference = _abs(reference_label_path) if reference_label_path else None
        now = _now()
        row = conn.execute("SELECT * FROM cases WHERE image_path = ?", (image,)).fetchone()
        if row is None:
            case_id = conn.execute(
                "INSERT INTO cases (name, image_path, reference_label_path, modality, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (name or case_name(image), image, reference, modality, now, now)).lastrowid
        else:
            case_id = row["id"]
            if reference and reference != row["reference_label_path"]:
                conn.execute("UPDATE cases SET reference_label_path = ?, updated_at = ? WHERE id = ?",
                             (reference, now, case_id))
        return _record(conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,)).fetchone())

    def get(self, case_id: int) -> CaseRecord:
        rows = self._read("SELECT * FROM cases WHERE id = ?", (case_id,))
        if not rows:
            raise UnknownCaseError(f"there is no case with id {case_id} in {self.path.name}.")
        return _record(rows[0])

    def find_by_image(self, image_path: str | os.PathLike) -> CaseRecord | None:
        rows = self._read("SELECT * FROM cases WHERE image_path = ?", (_abs(image_path),))
        return _record(rows[0]) if rows else None

    def list_cases(self, status: str | None = None) -> list[CaseRecord]:
        """Cases ordered by name (then id, so equal names keep a stable order)."""
        if status is None:
            rows = self._read("SELECT * FROM cases ORDER BY name, id")
        else:
            rows = self._read("SELECT * FROM cases WHERE status = ? ORDER BY name, id",
                              (_validate_status(status),))
        return [_record(r) for r in rows]

    def set_status(self, case_id: int, status: str) -> CaseRecord:
        return self._update_case(case_id, "status = ?", (_validate_status(status),))

    def set_label(self, case_id: int, label_path: str | os.PathLike | None,
                  status: str | None = None) -> CaseRecord:
        """Point the case at our working label (None forgets it); optionally move its status too."""
        label = _abs(label_path) if label_path else None
        if status is None:
            return self._update_case(case_id, "label_path = ?", (label,))
        return self._update_case(case_id, "label_path = ?, status = ?", (label, _validate_status(status)))

    def set_modality(self, case_id: int, modality: str) -> CaseRecord:
        """Known only once the image is read (discovery never opens images)."""
        return self._update_case(case_id, "modality = ?", (modality,))

    def record_work(self, case_id: int, clicks: int = 0, seconds: float = 0.0,
                    model_used: str | None = None, annotator: str | None = None) -> CaseRecord:
        """Add clicks and time to the case's totals; remember the latest model and annotator if given."""
        if clicks < 0 or seconds < 0:
            raise ValueError(f"work must not be negative (clicks={clicks}, seconds={seconds})")
        return self._update_case(
            case_id,
            "clicks = clicks + ?, seconds_spent = seconds_spent + ?, "
            "model_used = coalesce(?, model_used), annotator = coalesce(?, annotator)",
            (int(clicks), float(seconds), model_used, annotator))

    def set_score(self, case_id: int, sampler: str, model_version: str, score: float) -> None:
        with self._write() as conn:
            self._require_case(conn, case_id)
            conn.execute(
                "INSERT INTO scores (case_id, sampler, model_version, score, computed_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (case_id, sampler, model_version) "
                "DO UPDATE SET score = excluded.score, computed_at = excluded.computed_at",
                (case_id, sampler, model_version, float(score), _now()))

    def scores(self, sampler: str, model_version: str) -> dict[int, float]:
        """{case id: score} for one sampler under one model version (stale versions are not mixed in)."""
        rows = self._read("SELECT case_id, score FROM scores WHERE sampler = ? AND model_version = ?",
                          (sampler, model_version))
        return {r["case_id"]: float(r["score"]) for r in rows}

    def add_annotation(self, case_id: int, annotator: str, label_path: str | os.PathLike) -> Annotation:
        """One label per annotator per case: adding again replaces that annotator's label."""
        if not annotator:
            raise ValueError("an annotation needs an annotator name")
        label, now = _abs(label_path), _now()
        with self._write() as conn:
            self._require_case(conn, case_id)
            conn.execute(
                "INSERT INTO annotations (case_id, annotator, label_path, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (case_id, annotator) DO UPDATE SET label_path = excluded.label_path, "
                "created_at = excluded.created_at", (case_id, annotator, label, now))
        return Annotation(case_id, annotator, Path(label), now)

    def annotations(self, case_id: int) -> list[Annotation]:
        rows = self._read("SELECT * FROM annotations WHERE case_id = ? ORDER BY annotator", (case_id,))
        return [Annotation(r["case_id"], r["annotator"], Path(r["label_path"]), r["created_at"])
                for r in rows]

    def _require_case(self, conn: sqlite3.Connection, case_id: int) -> None:
        if conn.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone() is None:
            raise UnknownCaseError(f"there is no case with id {case_id} in {self.path.name}.")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "CaseStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
