"""`combine-correction`: save several correction-net files as one ensemble (mean of their logits)."""
from __future__ import annotations

NAME = "combine-correction"
HELP = "save two or more correction-net files as one ensemble file (the engines average them)"


def add_arguments(parser):
    parser.add_argument("members", nargs="+", help="correction-net .pt files (with sidecars)")
    parser.add_argument("--out", required=True, help="the ensemble .pt to write")
    parser.add_argument("--note", default="", help="why these members (kept in the sidecar)")


def run(args) -> int:
    from app.core.errors import ModelFileError
    from models.correction.checkpoint import combine_correction
    from models.errors import ModelFileError as ModelsModelFileError

    try:
        out = combine_correction(args.members, args.out, args.note)
    except ModelsModelFileError as error:          # models/ cannot raise app errors itself
        raise ModelFileError(f"Cannot combine these files: {error}") from None
    print(f"ensemble of {len(args.members)} networks: {out}")
    return 0
