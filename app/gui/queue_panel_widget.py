"""The active-learning queue (a dock): open cases, most worth annotating first by the chosen
sampler's stored scores; "Score cases" runs the scoring job in the background; "Next case" (N)
opens the top case.

The queue only reads scores stored under the current scoring version (sampler settings, the model's
weights, the labelled set: app.core.active_learning.scoring_version), so a retrained model shows
its open cases as "not scored" until they are scored again; nothing stale is mixed in. When the
queue was in use, a retraining that changes the active model starts that rescoring by itself.
"""
from __future__ import annotations

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (QComboBox, QDockWidget, QHBoxLayout, QLabel, QPushButton, QTableWidget,
                             QTableWidgetItem, QVBoxLayout, QWidget, QAbstractItemView, QHeaderView)

from app.core.active_learning import (ScoringContext, get_sampler, labelled_pool, next_case, open_pool,
                                      queue, sampler_names, scoring_job, scoring_version, unscored)
from app.core.jobs import CancelToken, Progress
from app.gui.error_dialog import user_message
from app.gui.workers import run_in_background

DEFAULT_SAMPLER = "mc-entropy"
MC_SAMPLES = 8


def uses_model(sampler) -> bool:
    # M-VAAL uses the model when there is one (its map is the second input): ask with a stand-in
    return sampler.needs_model or sampler.depends_on_model(ScoringContext(model=object()))


def scoring_context(store, sampler, model_name: str | None, load_model) -> ScoringContext:
    """The context the GUI scores with; the same one names the version the queue reads."""
    model = load_model(model_name) if uses_model(sampler) and model_name else None
    labelled = labelled_pool(store) if sampler.needs_labelled else ()
    return ScoringContext(model=model, labelled=labelled, mc_samples=MC_SAMPLES)


def version_model(model_name: str):
    """What names a model in the scoring version, without loading its weights when its sidecar
    carries their SHA-256 (model_version reads only that); else the loaded model."""
    from types import SimpleNamespace

    from app.core.segmentation import load_model

    try:
        from app.gui.train_dialog import sidecar_of, weights_of

        meta = sidecar_of(weights_of(model_name))
    except Exception:  # noqa: BLE001 - unreadable sidecar: loading says what is wrong
        meta = {}
    return SimpleNamespace(meta=meta) if meta.get("weights_sha256") else load_model(model_name)


class QueuePanelWidget(QDockWidget):
    def __init__(self, window):
        super().__init__("Annotation queue", window)
        self.setObjectName("queue_dock")
        self.window = window
        self.runner = None
        self._versions: dict[tuple, str] = {}
        self._shown_version: str | None = None  # the version the table was last filled from
        body = QWidget()
        layout = QVBoxLayout(body)
        top = QHBoxLayout()
        top.addWidget(QLabel("Sampler"))
        self.sampler_combo = QComboBox()
        for name in sampler_names():
            self.sampler_combo.addItem(name, name)
        self.sampler_combo.setCurrentIndex(max(0, self.sampler_combo.findData(DEFAULT_SAMPLER)))
        self.sampler_combo.setToolTip("How open cases are ranked (higher score = annotate sooner)")
        top.addWidget(self.sampler_combo, 1)
        layout.addLayout(top)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["case", "status", "score"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeToContents)
        self.setMinimumWidth(300)
        self.table.cellDoubleClicked.connect(lambda row, _col: self._open_row(row))
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.score_button = QPushButton("Score cases")
        self.score_button.setToolTip("Score the open cases with the chosen sampler and model (background, Cancel)")
        self.next_button = QPushButton("Next case (N)")
        self.next_button.setToolTip("Open the case at the top of the queue")
        buttons.addWidget(self.score_button)
        buttons.addWidget(self.next_button)
        layout.addLayout(buttons)
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        layout.addWidget(self.info_label)
        self.setWidget(body)
        self.sampler_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        self.score_button.clicked.connect(self.score)
        self.next_button.clicked.connect(self.open_next)

    # ---------------------------------------------------------------- reading the queue
    def sampler_name(self) -> str:
        return self.sampler_combo.currentData()

    def model_name(self) -> str | None:
        return self.window.annotation.model_combo.currentData() or None

    def version(self) -> str | None:
        """The scoring version of the chosen sampler with the active model (None: no model yet)."""
        sampler = get_sampler(self.sampler_name())
        needs = uses_model(sampler)
        model = self.model_name()
        if needs and not model:
            return None
        key = (self.sampler_name(), model if needs else None,
               tuple(r.id for r in self.window.store.list_cases("done")) if sampler.needs_labelled else ())
        if key not in self._versions:
            context = scoring_context(self.window.store, sampler, model, version_model)
            self._versions[key] = scoring_version(sampler, context)
        return self._versions[key]

    def rows(self) -> list[tuple[str, str, float | None, int]]:
        """(name, status, score or None, case id): scored open cases by score, then the unscored."""
        version = self.version()
        if version is None:
            return [(r.name, r.status, None, r.id) for r in self.window.store.list_cases() if r.status != "done"]
        store, name = self.window.store, self.sampler_name()
        scored = [(r.name, r.status, s, r.id) for r, s in queue(store, name, version)]
        return scored + [(r.name, r.status, None, r.id) for r in unscored(store, name, version)]

    def model_changed(self) -> None:
        """A new active model (a retraining finished): scores of the old model are another version
        and drop out of the queue. If the queue was in use (the old version had stored scores and
        the sampler reads the model), the open cases are scored again in the background, so the
        queue does not silently empty out."""
        previous = self._shown_version
        self.refresh()
        sampler = get_sampler(self.sampler_name())
        if (previous is None or previous == self.version() or not uses_model(sampler)
                or not self.window.store.scores(self.sampler_name(), previous)):
            return
        if self.score() is not None:
            self.window.notify("The model changed: scoring the open cases again for the queue "
                               "(the old model's scores are no longer shown).")

    def refresh(self) -> None:
        try:
            rows = self.rows()
        except Exception as error:  # noqa: BLE001 - e.g. the model cannot be loaded: say so, keep going
            self.table.setRowCount(0)
            self.info_label.setText(user_message(error, self.window.log_path))
            return
        self.table.setRowCount(len(rows))
        for i, (name, status, score, case_id) in enumerate(rows):
            for j, text in enumerate((name, status, "not scored" if score is None else f"{score:.4g}")):
                item = QTableWidgetItem(text)
                item.setData(Qt.UserRole, case_id)
                if j == 2:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(i, j, item)
        self._shown_version = self.version()
        missing = sum(score is None for _, _, score, _ in rows)
        self.info_label.setText(f"{len(rows) - missing} scored, {missing} not scored"
                                + (" — press Score cases" if missing else "")
                                if self.version() is not None else "waiting for the model list…")

    def displayed(self) -> list[tuple[str, str]]:
        """(case, score text) as the table shows them, top first."""
        return [(self.table.item(i, 0).text(), self.table.item(i, 2).text()) for i in range(self.table.rowCount())]

    # ---------------------------------------------------------------- actions
    def _open_row(self, row: int) -> None:
        self.window.open_case_id(self.table.item(row, 0).data(Qt.UserRole))

    def open_next(self) -> bool:
        w = self.window
        version = self.version()
        record = None
        if version is not None:
            current = w.case.case_id if w.case is not None else None
            record = next_case(w.store, self.sampler_name(), version, after_id=current)
        if record is None:
            w.notify("The queue is empty: every open case is unscored or done (Score cases ranks them).")
            return False
        return w.open_case_id(record.id)

    def score(self):
        from app.core.segmentation import load_model

        w = self.window
        if self.runner is not None and self.runner.running:
            return self.runner
        sampler_name, model_name, store = self.sampler_name(), self.model_name(), w.store
        pool = open_pool(store)
        if not pool:
            w.notify("No open case to score.")
            return None
        token = CancelToken()

        def job():
            yield Progress(0, 0, f"{sampler_name}: preparing")
            sampler = get_sampler(sampler_name)
            context = scoring_context(store, sampler, model_name, load_model)
            return (yield from scoring_job(store, sampler, pool, context, cancel=token))

        self.runner = run_in_background(job(), token, w, title=f"Scoring {len(pool)} cases ({sampler_name})",
                                        on_result=lambda _scores: self.refresh(),
                                        on_error=lambda e: (self.refresh(), w.show_error(user_message(e, w.log_path))),
                                        on_cancelled=self._cancelled)
        return self.runner

    def _cancelled(self) -> None:
        self.refresh()  # the scores stored before Cancel stay; the job resumes from them next time
        self.window.notify("Scoring cancelled; the scores computed so far are kept.")
