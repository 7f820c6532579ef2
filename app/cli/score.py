"""`score --data DIR --sampler S --out CSV`: rank a folder's cases by how worth annotating they are.

Cases are found as the GUI finds them (flat folder, MSD imagesTr/imagesTs, DICOM series). Scores
go through the same scoring job as the GUI's; with --db they are kept in that case database (so an
interrupted run resumes and the GUI's queue sees them), otherwise in a temporary one.
"""
from __future__ import annotations

import csv
import os
import sys
import tempfile
from pathlib import Path

NAME = "score"
HELP = "score cases for active learning (random, mc-variance, mc-entropy, mc-bald, vaal, mvaal)"


def add_arguments(parser):
    # The sampler registry imports torch (~3 s); `main.py --help` must not pay for it, so the name
    # is checked by get_sampler() in run(), which lists the valid names in its error.
    parser.add_argument("--data", required=True, help="folder of cases (flat, MSD imagesTr/imagesTs, DICOM)")
    parser.add_argument("--sampler", required=True,
                        help="random, mc-variance, mc-entropy, mc-bald, vaal or mvaal")
    parser.add_argument("--out", required=True, help="CSV to write: case, score, rank, ... (highest first)")
    parser.add_argument("--model", default="unet",
                        help="segmentation model name or .pt path (samplers that use a model; default unet)")
    parser.add_argument("--labelled", default=None,
                        help="folder of already labelled cases (vaal, mvaal compare against them)")
    parser.add_argument("--mc", type=int, default=8, help="MC-dropout passes (default 8)")
    parser.add_argument("--region", default=None, choices=["volume", "body", "foreground"],
                        help="MC samplers: where per-voxel uncertainty is averaged (default foreground)")
    parser.add_argument("--stride", type=int, default=1, help="score every k-th slice only (faster)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", default=None,
                        help="case database to keep the scores in (e.g. results/segloop.db)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")


def _records(store, folder):
    from app.core.case_discovery import discover_cases
    from app.core.errors import InputError

    found = discover_cases(folder)
    if not found:
        raise InputError(f"no cases found in {folder}.")
    return [store.add_case(c.image_path, c.reference_label_path, c.name) for c in found]


def _write_csv(path: Path, rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run(args) -> int:
    from app.core.active_learning import ScoringContext, get_sampler, scoring_job, scoring_version
    from app.core.active_learning.ordering import pool_case
    from app.core.case_store import CaseStore
    from app.core.errors import InputError
    from app.core.jobs import run_job

    sampler = get_sampler(args.sampler, **({"region": args.region} if args.region and
                                           args.sampler.startswith("mc-") else {}))
    if sampler.needs_labelled and not args.labelled:
        raise InputError(f"the '{args.sampler}' sampler compares cases with labelled ones: give "
                         "--labelled FOLDER.")
    model = None
    if sampler.needs_model or args.sampler == "mvaal":
        from app.core.segmentation import load_model

        model = load_model(args.model, args.device)

    with tempfile.TemporaryDirectory(prefix="segloop-score-") as tmp:
        store = CaseStore(args.db or Path(tmp) / "scores.db")
        try:
            records = _records(store, args.data)
            labelled = _records(store, args.labelled) if args.labelled else []
            labelled_ids = {r.id for r in labelled}
            records = [r for r in records if r.id not in labelled_ids]
            if not records:
                raise InputError("every case in --data is also in --labelled; nothing to score.")
            context = ScoringContext(model=model, labelled=[pool_case(r) for r in labelled],
                                     mc_samples=args.mc, seed=args.seed, slice_stride=args.stride,
                                     device=args.device)
            version = scoring_version(sampler, context)
            def report(progress):
                text = progress.message
                if (": score " in text or text.endswith("already scored")
                        or (text.startswith("training") and progress.done == progress.total)):
                    print(text, file=sys.stderr)

            scores = run_job(scoring_job(store, sampler, [pool_case(r) for r in records], context,
                                         version), report)
        finally:
            store.close()
    ranked = sorted(records, key=lambda r: (-scores[r.id], r.name))
    rows = [["case", "score", "rank", "sampler", "version", "image"]]
    rows += [[r.name, f"{scores[r.id]:.6g}", i + 1, args.sampler, version, str(r.image_path)]
             for i, r in enumerate(ranked)]
    _write_csv(Path(args.out), rows)
    print(f"{len(ranked)} cases scored with {args.sampler} -> {args.out}")
    for r in ranked[:5]:
        print(f"  {scores[r.id]:.4g}  {r.name}")
    return 0
