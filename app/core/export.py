"""Export the finished cases as a training set: nnU-Net v2 / MSD raw layout, published atomically.

    OUT/imagesTr/<case>_0000.nii.gz   the image, bit-exact copy when it already was a plain 3D
                                      .nii.gz (else re-written from what SegLoop read, same grid)
    OUT/labelsTr/<case>.nii.gz        the label on that image's exact grid (or <case>.nrrd for
                                      3D Slicer users; dataset.json's file_ending then describes the
                                      images only and nnU-Net cannot train on the folder as is)
    OUT/dataset.json                  see app/core/dataset_json.py
    OUT/summary.csv                   case, annotator, clicks, seconds spent, model used, status, ...
    OUT/logs/<case>/                  the cases' interaction logs with their sidecars

`models/training` (our `train`) and nnU-Net's planning read it as is (name the folder
DatasetNNN_Name under nnUNet_raw for nnU-Net).

Which label a case exports: with a consensus method and two or more annotators' labels in the store,
their consensus; else the case's own label; else the reference label it came with; a case with
several annotators' labels and no label of its own needs a consensus method.

Nothing is published unless every selected case exported cleanly (or skip_invalid leaves the bad
ones out): problems are collected over all cases and reported together. The folder appears whole or
not at all (app/core/export_folder.py); an existing export is replaced only with overwrite=True.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from app.core.case_store import STATUSES, CaseRecord, CaseStore
from app.core.dataset_json import (IMAGE_FILE_ENDING, build_dataset_json, channel_name,
                                   check_dataset_json, label_names)
from app.core.errors import GridMismatchError, InputError, SegLoopError
from app.core.export_extras import SUMMARY_NAME, SummaryRow, copy_logs, find_logs, write_summary
from app.core.export_folder import StagedFolder
from app.core.jobs import CancelToken, Job, Progress
from app.core.volume import GRID_TOLERANCE, Volume
from app.core.volume_io import read_label, read_volume, write_label, write_volume


LABEL_FORMATS = {"nifti": ".nii.gz", "nrrd": ".nrrd"}
CONSENSUS_METHODS = ("majority", "staple")


class ExportError(InputError):
    """The selected cases cannot be exported as they are."""


@dataclass
class ExportSummary:
    out_dir: Path
    exported: list[str] = field(default_factory=list)                  # ids in the export
    skipped: list[tuple[str, str]] = field(default_factory=list)       # (case, reason), skip_invalid
    labels: dict[str, int] = field(default_factory=dict)
    channel: str = ""
    logs_copied: int = 0
    label_format: str = "nifti"

    def text(self) -> str:
        lines = [f"exported {len(self.exported)} cases to {self.out_dir} "
                 f"(labels {', '.join(f'{v}={k}' for k, v in self.labels.items())}; "
                 f"channel {self.channel}; {self.logs_copied} interaction logs)"]
        lines += [f"left out {case}: {reason}" for case, reason in self.skipped]
        return "\n".join(lines)


@dataclass
class _CaseExport:
    values: set[int]
    modality: str
    row: SummaryRow


def export_ids(records: list[CaseRecord]) -> dict[int, str]:
    """{case id: file-safe, unique (also on case-insensitive disks) id for the export}."""
    ids, used = {}, set()
    for record in records:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", record.name).strip("._") or f"case{record.id}"
        name, n = base, 2
        while name.lower() in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name.lower())
        ids[record.id] = name
    return ids


def select_cases(store: CaseStore, status: str | None = "done") -> list[CaseRecord]:
    """The store's cases with `status` ("all" or None: every case)."""
    if status in (None, "all"):
        return store.list_cases()
    if status not in STATUSES:
        raise ExportError(f"'{status}' is not a case status; use one of {', '.join(STATUSES)} or all.")
    return store.list_cases(status)


def export_job(store: CaseStore, out_dir, status: str | None = "done", label_format: str = "nifti",
               consensus: str | None = None, label_table: dict[int, str] | None = None,
               overwrite: bool = False, logs_dirs=None, skip_invalid: bool = False,
               channel: str | None = None, cases: list[CaseRecord] | None = None,
               cancel: CancelToken | None = None) -> Job:
    """Generator job: yields Progress per case, returns an ExportSummary.

    cases: an explicit selection (else the store's cases with `status`); logs_dirs: folders to
    search for interaction logs (default: the store's folder, i.e. results/). Raises ExportError
    (nothing written) when a case cannot be exported, ExportExistsError when out_dir is taken,
    JobCancelled on cancel (the previous export, if any, untouched)."""
    if label_format not in LABEL_FORMATS:
        raise ExportError(f"unknown label format '{label_format}'; use {' or '.join(LABEL_FORMATS)}.")
    if consensus not in (None,) + CONSENSUS_METHODS:
        raise ExportError(f"unknown consensus '{consensus}'; use {' or '.join(CONSENSUS_METHODS)}.")
    records = list(cases) if cases is not None else select_cases(store, status)
    if not records:
        raise ExportError(f"no cases with status '{status}' in {store.path}; nothing to export.")
    ids = export_ids(records)
    staged = StagedFolder(out_dir, overwrite)
    try:
        summary = yield from _build(store, records, ids, staged, label_format, consensus,
                                    label_table, logs_dirs, skip_invalid, channel, cancel)
        staged.publish()
    except BaseException:
        staged.discard()
        raise
    yield Progress(len(records) + 1, len(records) + 1, f"exported {len(summary.exported)} cases")
    return summary


def _build(store, records, ids, staged, label_format, consensus, label_table, logs_dirs,
           skip_invalid, channel, cancel) -> Job:
    root, n = staged.path, len(records)
    summary = ExportSummary(staged.out, label_format=label_format)
    done: dict[int, _CaseExport] = {}
    problems: list[tuple[str, str]] = []
    for k, record in enumerate(records):
        if cancel is not None:
            cancel.raise_if_cancelled()
        yield Progress(k, n + 1, f"case {k + 1} of {n}: {record.name}")
        try:
            done[record.id] = _export_case(store, record, ids[record.id], root, label_format, consensus)
        except (SegLoopError, OSError) as error:
            problems.append((record.name, _reason(error)))
            for folder, ending in (("imagesTr", f"_0000{IMAGE_FILE_ENDING}"),
                                   ("labelsTr", LABEL_FORMATS[label_format])):
                (root / folder / f"{ids[record.id]}{ending}").unlink(missing_ok=True)
    if problems and not skip_invalid:
        raise ExportError(
            f"nothing was exported: {len(problems)} of {n} cases cannot be exported as they are "
            "(fix them, or leave them out with --skip-invalid):\n"
            + "\n".join(f"  {case}: {reason}" for case, reason in problems))
    if not done:
        raise ExportError("nothing was exported: no case could be exported:\n"
                          + "\n".join(f"  {case}: {reason}" for case, reason in problems))
    summary.skipped = problems
    if cancel is not None:
        cancel.raise_if_cancelled()
    yield Progress(n, n + 1, "writing dataset.json, summary and logs")
    exported = [r for r in records if r.id in done]
    summary.exported = [ids[r.id] for r in exported]
    summary.labels = label_names(set().union(*(c.values for c in done.values())), label_table)
    summary.channel = channel or channel_name(c.modality for c in done.values())
    data = build_dataset_json(len(exported), summary.labels, summary.channel, staged.out.name,
                              LABEL_FORMATS[label_format])
    problems = check_dataset_json(data, root)
    if problems:  # our own bug, never the user's: refuse rather than publish a broken dataset
        raise ExportError("the export is inconsistent and was not published: " + "; ".join(problems))
    (root / "dataset.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    write_summary(root / SUMMARY_NAME, [done[r.id].row for r in exported])
    found = find_logs(logs_dirs if logs_dirs is not None else [store.path.parent],
                      exclude=[staged.out, root])
    for record in exported:
        logs = found.get(_path_key(record.image_path), [])
        if logs:
            summary.logs_copied += copy_logs(logs, root / "logs" / ids[record.id])
    return summary


def _path_key(path) -> str:
    return os.path.normcase(str(Path(path).resolve()))


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    if isinstance(error, OSError) and not isinstance(error, SegLoopError):
        text = f"{error.strerror or text}" + (f" ({error.filename})" if error.filename else "")
    return text.splitlines()[0] if len(text) < 300 else text[:297] + "..."


def _export_case(store, record: CaseRecord, case_id: str, root: Path, label_format: str,
                 consensus: str | None) -> _CaseExport:
    volume = read_volume(record.image_path)
    label, source, annotator = _label_for(store, record, volume, consensus)
    image_dest = root / "imagesTr" / f"{case_id}_0000{IMAGE_FILE_ENDING}"
    label_dest = root / "labelsTr" / f"{case_id}{LABEL_FORMATS[label_format]}"
    image_dest.parent.mkdir(exist_ok=True)
    label_dest.parent.mkdir(exist_ok=True)
    _write_image(Path(record.image_path), volume, image_dest)
    write_label(label, volume, label_dest)
    _check_pair(image_dest, label_dest, record.name)
    modality = volume.modality if volume.modality in ("CT", "MR") else record.modality
    row = SummaryRow(case=case_id, annotator=annotator, clicks=record.clicks,
                     seconds_spent=record.seconds_spent, model_used=record.model_used or "",
                     status=record.status, label_source=source, source_name=record.name,
                     image=str(record.image_path))
    return _CaseExport({int(v) for v in np.unique(label)}, modality, row)


def _label_for(store, record: CaseRecord, volume: Volume, consensus: str | None):
    """(label array, where it came from, annotator(s)) for one case; see the module docstring."""
    annotations = store.annotations(record.id)
    if consensus and len(annotations) >= 2:
        from app.core.consensus import majority_vote, staple

        masks = [read_label(a.label_path, volume).array for a in annotations]
        merged = majority_vote(masks) if consensus == "majority" else staple(masks).mask
        return (merged, f"{consensus} of {len(masks)} annotators",
                "+".join(a.annotator for a in annotations))
    if record.label_path:
        return read_label(record.label_path, volume).array, "annotated", record.annotator or ""
    if len(annotations) == 1:
        only = annotations[0]
        return read_label(only.label_path, volume).array, "annotator", only.annotator
    if len(annotations) > 1:
        raise ExportError(f"{len(annotations)} annotators labelled this case and it has no merged "
                          "label; choose a consensus (majority or staple).")
    if record.reference_label_path:
        return read_label(record.reference_label_path, volume).array, "reference", record.annotator or ""
    raise ExportError("the case has no label (neither its own, an annotator's nor a reference).")


def _write_image(source: Path, volume: Volume, dest: Path) -> None:
    """Copy the bytes when they already are what nnU-Net wants (a plain 3D scalar NIfTI that SegLoop
    read without adapting anything); else write the volume SegLoop annotated, on its grid."""
    name = source.name.lower()
    if source.is_file() and not volume.notes and name.endswith((".nii.gz", ".nii")) \
            and _plain_3d(source):
        if name.endswith(".nii.gz"):
            shutil.copyfile(source, dest)
        else:
            with open(source, "rb") as raw, gzip.open(dest, "wb", compresslevel=6) as packed:
                shutil.copyfileobj(raw, packed, 1 << 20)
        return
    write_volume(volume, dest)


def _header(path: Path) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return reader


def _plain_3d(path: Path) -> bool:
    try:
        reader = _header(path)
    except RuntimeError:
        return False
    return reader.GetDimension() == 3 and reader.GetNumberOfComponents() == 1


def _check_pair(image: Path, label: Path, name: str) -> None:
    """Read back both headers: what is published must lie on one grid, as nnU-Net checks."""
    a, b = _header(image), _header(label)
    same = a.GetSize() == b.GetSize()
    for x, y in ((a.GetSpacing(), b.GetSpacing()), (a.GetOrigin(), b.GetOrigin()),
                 (a.GetDirection(), b.GetDirection())):
        x, y = np.asarray(x), np.asarray(y)
        scale = max(1.0, float(np.abs(x).max()), float(np.abs(y).max()))
        same = same and float(np.abs(x - y).max()) <= GRID_TOLERANCE * scale
    if not same:
        raise GridMismatchError(
            f"the exported image and label of {name} do not lie on the same grid "
            f"(image {a.GetSize()} spacing {a.GetSpacing()}, label {b.GetSize()} spacing {b.GetSpacing()}).")
