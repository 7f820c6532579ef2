"""`prelabel DIR --model NAME --out OUTDIR`: a model's proposal for every case of a folder.

DIR may be flat (<case>.nii.gz), MSD / nnU-Net (imagesTr, imagesTs) or hold DICOM series folders.
Writes OUTDIR/<case>.nii.gz on each image's grid as each case finishes; a rerun skips finished
cases. Exit status 0 when every case was pre-labelled or skipped, 1 when any failed, 130 when
interrupted (Ctrl-C once: stop after the current slice batch; twice: stop at once).
"""
from __future__ import annotations

import argparse
import signal
import sys

NAME = "prelabel"
HELP = "pre-label every case of a folder with a model (one label file per case, on its grid)"


def add_arguments(parser):
    parser.add_argument("folder", help="folder of cases: flat, MSD (imagesTr/imagesTs) or DICOM series")
    parser.add_argument("--model", default="unet", help="model name (default: %(default)s) or a .pt path")
    parser.add_argument("--out", required=True, help="folder to write <case>.nii.gz into")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--redo", action="store_true",
                        help="segment every case again, even those whose label file is already there")
    # SUPPRESS: `python main.py --results X prelabel ...` sets the same option before the subcommand.
    parser.add_argument("--results", default=argparse.SUPPRESS,
                        help="also record the cases in RESULTS/segloop.db (status pre-labelled); "
                             "default: no case database is touched")


def run(args) -> int:
    from tqdm import tqdm

    from app.core.batch import prelabel_job
    from app.core.case_discovery import discover_cases
    from app.core.errors import InputError
    from app.core.jobs import CancelToken

    cases = discover_cases(args.folder)
    if not cases:
        raise InputError(f"no cases found in {args.folder} (flat, MSD or DICOM folders are read).")
    store = None
    if getattr(args, "results", None):
        from pathlib import Path

        from app.core.case_store import CaseStore

        store = CaseStore(Path(args.results) / "segloop.db")
    token = CancelToken()
    previous = _install_interrupt(token)
    bar = tqdm(total=len(cases), unit="case", dynamic_ncols=True, file=sys.stderr)
    try:
        job = prelabel_job(cases, args.model, args.out, store=store, skip_existing=not args.redo,
                           device=args.device, cancel=token)
        summary = _drive(job, bar)
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous)
        if store is not None:
            store.close()
    for case, reason in summary.failed:
        print(f"failed {case}: {reason}", file=sys.stderr)
    print(f"{args.model}: {len(summary.done)} pre-labelled, {len(summary.failed)} failed, "
          f"{len(summary.skipped)} skipped (already there or protected) -> {args.out}")
    if summary.cancelled:
        print(f"interrupted: {len(summary.not_started)} cases not started; run again to finish",
              file=sys.stderr)
        return 130
    return 1 if summary.failed else 0


def _drive(job, bar):
    shown = 0
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            return stop.value
        if progress.done > shown:
            bar.update(progress.done - shown)
            shown = progress.done
        bar.set_description_str(progress.message.split(" — ")[0][:60], refresh=False)
        bar.refresh()


def _install_interrupt(token):
    """First Ctrl-C asks the job to stop cleanly; a second one interrupts at once."""
    def handler(signum, frame):
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        print("\nstopping after the current step (Ctrl-C again to stop now)...", file=sys.stderr)

    return signal.signal(signal.SIGINT, handler)
