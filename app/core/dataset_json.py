"""The dataset.json of an exported training set, in nnU-Net v2's raw-dataset format.

nnU-Net v2 reads four keys and its planning refuses a dataset that gets them wrong:
  "channel_names": {"0": "CT"}         one entry per input channel; "CT" selects nnU-Net's CT
                                       normalisation, any other name z-scores each image
  "labels": {"background": 0, "tumour": 1, ...}
                                       name -> value; "background" must be 0 and the values must
                                       run 0, 1, 2, ... without a gap, and every label file may only
                                       hold declared values
  "numTraining": 12                    the number of imagesTr/labelsTr pairs
  "file_ending": ".nii.gz"             of every image and label file
Other keys ("name", "description") are kept by nnU-Net and ignored.

Names: without a table, a binary dataset calls value 1 "tumour" (as the bench data does) and a
multi-class one calls value k "class_k"; a table such as "1=liver,2=tumour" names them instead.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from app.core.errors import InputError

IMAGE_FILE_ENDING = ".nii.gz"
REQUIRED_KEYS = ("channel_names", "labels", "numTraining", "file_ending")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")


class LabelTableError(InputError):
    """A label table that cannot name the values of the exported labels."""


def parse_label_table(text: str) -> dict[int, str]:
    """'1=liver,2=tumour' (or a path to a JSON file {"liver": 1, ...}) -> {1: 'liver', 2: 'tumour'}.

    Value 0 is always "background" and need not be given."""
    text = text.strip()
    if text.lower().endswith(".json") and Path(text).is_file():
        return _table_from_json(Path(text))
    table: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        value, sep, name = item.partition("=")
        if not sep or not value.strip().isdigit() or not name.strip():
            raise LabelTableError(f"'{item}' in the label table is not VALUE=NAME (e.g. 1=liver,2=tumour).")
        _add(table, int(value), name.strip())
    if not table:
        raise LabelTableError("the label table is empty; give it as VALUE=NAME pairs, e.g. 1=liver,2=tumour.")
    return table


def _table_from_json(path: Path) -> dict[int, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LabelTableError(f"the label table {path.name} is not readable JSON ({error}).") from None
    labels = data.get("labels", data) if isinstance(data, dict) else None
    if not isinstance(labels, dict):
        raise LabelTableError(f"{path.name} must hold {{\"name\": value, ...}} (or a dataset.json).")
    table: dict[int, str] = {}
    for name, value in labels.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise LabelTableError(f"{path.name}: the value of '{name}' must be a whole number, not {value!r}.")
        _add(table, value, str(name))
    return table


def _add(table: dict[int, str], value: int, name: str) -> None:
    if value == 0:
        if name != "background":
            raise LabelTableError(f"value 0 is nnU-Net's 'background' and cannot be named '{name}'.")
        return
    if not 0 < value <= 255:
        raise LabelTableError(f"label value {value} is outside 1..255.")
    if not _NAME.match(name) or name == "background":
        raise LabelTableError(f"'{name}' is not usable as a label name (letters, digits, space, _ . -).")
    if value in table and table[value] != name:
        raise LabelTableError(f"label value {value} is named twice ('{table[value]}' and '{name}').")
    if name in table.values() and table.get(value) != name:
        raise LabelTableError(f"the label name '{name}' is given to two values.")
    table[value] = name


def label_names(values_present, table: dict[int, str] | None = None) -> dict[str, int]:
    """nnU-Net's "labels" for label files holding `values_present`: background 0, then every value
    1..max, named from `table` or by default. The range has no gap because nnU-Net requires that."""
    present = sorted({int(v) for v in values_present} - {0})
    top = max(present + list(table or {}) + [0])
    if table:
        unnamed = [v for v in range(1, top + 1) if v not in table]
        if unnamed:
            raise LabelTableError(
                f"the label table names {_values(table)} but the labels hold or need "
                f"{_values(range(1, top + 1))}; name every value (missing: {_values(unnamed)}).")
        names = {v: table[v] for v in range(1, top + 1)}
    elif top == 1:
        names = {1: "tumour"}
    else:
        names = {v: f"class_{v}" for v in range(1, top + 1)}
    return {"background": 0, **{names[v]: v for v in range(1, top + 1)}}


def _values(values) -> str:
    return ", ".join(str(v) for v in sorted(values))


def channel_name(modalities) -> str:
    """"CT" only when every image is CT (nnU-Net then uses HU-based normalisation), "MR" when all
    are MR; anything else z-scores each image, which is what a mixed or unknown set needs."""
    kinds = set(modalities)
    if kinds == {"CT"}:
        return "CT"
    if kinds == {"MR"}:
        return "MR"
    return "mixed"


def build_dataset_json(num_training: int, labels: dict[str, int], channel: str, name: str,
                       label_file_ending: str = IMAGE_FILE_ENDING, description: str = "") -> dict:
    data = {
        "channel_names": {"0": channel},
        "labels": labels,
        "numTraining": int(num_training),
        "file_ending": IMAGE_FILE_ENDING,
        "name": name,
        "description": description or "Exported by SegLoop for retraining.",
    }
    if label_file_ending != IMAGE_FILE_ENDING:
        # nnU-Net itself needs one ending for images and labels; this export is meant for 3D Slicer.
        data["label_file_ending"] = label_file_ending
        data["description"] += (f" Labels are {label_file_ending} files (for 3D Slicer); file_ending "
                                "applies to the images only, so nnU-Net cannot train on this folder as is.")
    return data


def check_dataset_json(data: dict, root: Path | None = None) -> list[str]:
    """What nnU-Net v2 would object to in `data` (and, given the dataset folder, in its files);
    an empty list means none. Used on every export before it is published, and by the tests."""
    problems = [f"missing key '{k}'" for k in REQUIRED_KEYS if k not in data]
    if problems:
        return problems
    channels, labels = data["channel_names"], data["labels"]
    if not isinstance(channels, dict) or not channels or \
            sorted(channels) != [str(i) for i in range(len(channels))] or \
            not all(isinstance(v, str) and v for v in channels.values()):
        problems.append("channel_names must map '0', '1', ... to non-empty names")
    if not isinstance(labels, dict) or labels.get("background") != 0:
        problems.append("labels must map 'background' to 0")
    elif not all(isinstance(v, int) and not isinstance(v, bool) for v in labels.values()):
        problems.append("label values must be whole numbers")
    elif sorted(labels.values()) != list(range(len(labels))):
        problems.append(f"label values must run 0, 1, 2, ... without gaps, got {sorted(labels.values())}")
    if not isinstance(data["numTraining"], int) or isinstance(data["numTraining"], bool):
        problems.append("numTraining must be an integer")
    if not isinstance(data["file_ending"], str) or not data["file_ending"].startswith("."):
        problems.append("file_ending must be a string like '.nii.gz'")
    if root is not None and not problems:
        problems += _check_files(data, Path(root), len(channels))
    return problems


def _check_files(data: dict, root: Path, n_channels: int) -> list[str]:
    ending = data["file_ending"]
    label_ending = data.get("label_file_ending", ending)
    images = sorted((root / "imagesTr").glob(f"*_0000{ending}"))
    cases = [p.name[: -len(f"_0000{ending}")] for p in images]
    problems = []
    if len(cases) != data["numTraining"]:
        problems.append(f"numTraining is {data['numTraining']} but imagesTr holds {len(cases)} cases")
    for case in cases:
        for channel in range(1, n_channels):
            if not (root / "imagesTr" / f"{case}_{channel:04d}{ending}").is_file():
                problems.append(f"{case}: channel {channel} image is missing")
        if not (root / "labelsTr" / f"{case}{label_ending}").is_file():
            problems.append(f"{case}: labelsTr/{case}{label_ending} is missing")
    labels = sorted((root / "labelsTr").glob(f"*{label_ending}"))
    extra = sorted({p.name[: -len(label_ending)] for p in labels} - set(cases))
    if extra:
        problems.append(f"labels without an image: {', '.join(extra)}")
    return problems
