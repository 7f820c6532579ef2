"""`export --out DIR`: the finished cases as an nnU-Net v2 / MSD raw dataset for retraining.

Reads the case database RESULTS/segloop.db (default results/, as the application uses) and writes
DIR/imagesTr, DIR/labelsTr, DIR/dataset.json, DIR/summary.csv and DIR/logs/ (see app/core/export.py).
With --format nrrd the labels are .nrrd files for 3D Slicer; dataset.json's file_ending then
describes the images only, and nnU-Net cannot train on that folder as it is.
An existing DIR is never replaced unless --overwrite is given; the new export appears whole or not at all.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "export"
HELP = "export finished cases as an nnU-Net v2 / MSD dataset (images, labels, dataset.json, logs, CSV)"

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RESULTS = REPO_ROOT / "results"
DATABASE_NAME = "segloop.db"


def add_arguments(parser):
    from app.core.case_store import STATUSES

    parser.add_argument("--out", required=True, help="folder to create (e.g. Dataset501_Sarcoma)")
    parser.add_argument("--status", default="done", choices=STATUSES + ("all",),
                        help="export the cases with this status (default: %(default)s)")
    parser.add_argument("--results", default=argparse.SUPPRESS,
                        help="results folder holding segloop.db and the interaction logs "
                             "(default: results/ of this SegLoop)")
    parser.add_argument("--format", default="nifti", choices=("nifti", "nrrd"),
                        help="label files: nifti (.nii.gz, nnU-Net) or nrrd (3D Slicer); images are "
                             "always .nii.gz")
    parser.add_argument("--consensus", default=None, choices=("majority", "staple"),
                        help="merge several annotators' labels of a case with this method")
    parser.add_argument("--labels", default=None, metavar="TABLE",
                        help="label names, e.g. '1=liver,2=tumour' or a JSON file {\"liver\": 1, ...} "
                             "(default: 1=tumour for binary labels, class_K otherwise)")
    parser.add_argument("--channel-name", default=None,
                        help="dataset.json channel name (default: CT or MR when all images are, else mixed)")
    parser.add_argument("--logs", action="append", default=None, metavar="FOLDER",
                        help="folder to search for interaction logs (repeatable; default: the results folder)")
    parser.add_argument("--skip-invalid", action="store_true",
                        help="leave out cases that cannot be exported instead of refusing the export")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing export folder")


def run(args) -> int:
    from app.core.case_store import CaseStore
    from app.core.dataset_json import parse_label_table
    from app.core.errors import InputError
    from app.core.export import export_job
    from app.core.jobs import run_job

    results = Path(getattr(args, "results", None) or DEFAULT_RESULTS)
    database = results / DATABASE_NAME
    if not database.is_file():
        raise InputError(f"there is no case database at {database}; open the cases in SegLoop first, "
                         "or point --results at the folder that holds segloop.db.")
    table = parse_label_table(args.labels) if args.labels else None
    with CaseStore(database) as store:
        job = export_job(store, args.out, status=args.status, label_format=args.format,
                         consensus=args.consensus, label_table=table, overwrite=args.overwrite,
                         logs_dirs=args.logs, skip_invalid=args.skip_invalid,
                         channel=args.channel_name)
        summary = run_job(job, lambda p: print(f"  {p.message}", file=sys.stderr))
    print(summary.text())
    return 0
