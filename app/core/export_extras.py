"""What an export carries besides images and labels: the interaction logs and the work summary CSV.

Logs are found by what they say, not where they are: every `*.jsonl` under the given folders whose
header names an exported case's image is copied to `logs/<case>/`, with its sidecars
(`.initial.nii.gz`, `.prior.npz`, `.blobs/`), so a replay can run from the export alone.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

SUMMARY_NAME = "summary.csv"
SUMMARY_COLUMNS = ("case", "annotator", "clicks", "seconds_spent", "model_used", "status",
                   "label_source", "source_name", "image")
LOG_SIDECARS = (".initial.nii.gz", ".prior.npz", ".blobs")


@dataclass(frozen=True)
class SummaryRow:
    case: str              # the id in the export (file names)
    annotator: str
    clicks: int
    seconds_spent: float
    model_used: str
    status: str
    label_source: str      # "annotated", "reference", "majority of 3 annotators", ...
    source_name: str       # the case's name in SegLoop
    image: str             # the original image path


def write_summary(path: Path, rows: list[SummaryRow]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(SUMMARY_COLUMNS)
        for r in rows:
            writer.writerow([r.case, r.annotator, r.clicks, f"{r.seconds_spent:.1f}", r.model_used,
                             r.status, r.label_source, r.source_name, r.image])


def _log_image(path: Path) -> str | None:
    """The image path in a log's header line, or None for any other .jsonl."""
    try:
        with open(path, "r", encoding="utf-8") as stream:
            header = json.loads(stream.readline())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(header, dict) or header.get("type") != "header" or not header.get("image"):
        return None
    return os.path.normcase(str(Path(header["image"])))


def find_logs(folders, exclude=()) -> dict[str, list[Path]]:
    """{normalised image path: its logs, oldest name first} from every log under `folders`.

    Hidden folders (our own staging), `exclude`d ones and other exports (a folder with a
    dataset.json) are not searched: an export must not collect copies of logs it exported before."""
    skip = {os.path.normcase(str(Path(p).absolute())) for p in exclude}
    found: dict[str, list[Path]] = {}
    seen: set[str] = set()
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for current, dirs, files in os.walk(folder):
            if "dataset.json" in files and Path(current) != folder:
                dirs[:] = []
                continue
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                             and os.path.normcase(os.path.join(current, d)) not in skip)
            for name in sorted(files):
                if not name.endswith(".jsonl"):
                    continue
                path = Path(current) / name
                key = os.path.normcase(str(path.resolve()))
                image = _log_image(path) if key not in seen else None
                seen.add(key)
                if image is not None:
                    found.setdefault(image, []).append(path)
    return found


def copy_logs(logs: list[Path], dest: Path) -> int:
    """Copy each log and its sidecars into `dest`; returns how many logs were copied."""
    dest.mkdir(parents=True, exist_ok=True)
    for index, log in enumerate(logs):
        stem = log.name[: -len(".jsonl")]
        # A log names its sidecars by file name, so names are kept: two logs of the same name
        # (log.jsonl in two session folders) go to numbered subfolders instead.
        target = dest if not (dest / log.name).exists() else dest / str(index + 1)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(log, target / log.name)
        for suffix in LOG_SIDECARS:
            side = log.with_name(stem + suffix)
            if side.is_dir():
                shutil.copytree(side, target / side.name)
            elif side.is_file():
                shutil.copy2(side, target / side.name)
    return len(logs)
