"""`noisy-labels`: train on several annotators' masks, predict test slices, score to the consensus.

Trains one method (plain, cm or majority; see models/noisy_labels/training.py) on DATA/train.npz,
keeps the epoch with the best Dice to DATA/val.npz's consensus, predicts DATA/test.npz from the
images alone and writes one CSV row per test slice.
"""
from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import numpy as np

NAME = "noisy-labels"
HELP = "learn from disagreeing annotators (LIDC npz layout) and score test slices to the consensus"

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = "../shared/data/lidc"

COLUMNS = ("slice_id", "n_annotators", "dice", "iou", "predicted_pixels", "consensus_pixels")


def add_arguments(parser):
    parser.add_argument("--data", default=None,
                        help=f"folder with train.npz, val.npz and test.npz "
                             f"(default: {DEFAULT_DATA}, relative to the repository)")
    parser.add_argument("--method", choices=("plain", "cm", "majority"), default="cm",
                        help="plain: random single-annotator masks; cm: with the confusion-matrix "
                             "annotator model; majority: trained on the consensus (reference)")
    parser.add_argument("--out", required=True, help="CSV file to write, one row per test slice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: the benchmark's setting)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")


def _load(folder: Path, split: str):
    from app.core.errors import InputError
    from models.noisy_labels import load_slices

    path = folder / f"{split}.npz"
    if not path.is_file():
        raise InputError(f"{path} not found: --data must be a folder with train.npz, val.npz "
                         f"and test.npz.")
    try:
        return load_slices(path)
    except (ValueError, OSError) as error:
        raise InputError(f"{path} cannot be used: {error}") from None


def write_rows(path: Path, rows) -> None:
    """Write the per-slice scores atomically (temp file in the same folder, then replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for row in rows:
                writer.writerow([row.slice_id, row.n_annotators, f"{row.dice:.6f}",
                                 f"{row.iou:.6f}", row.predicted_pixels, row.consensus_pixels])
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run(args) -> int:
    from app.core.errors import InputError
    from models.noisy_labels import TrainConfig, run_training, score_slices
    from models.noisy_labels.training import DEFAULT_EPOCHS

    folder = Path(args.data) if args.data else REPO / DEFAULT_DATA
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder: --data must hold train.npz, val.npz and test.npz.")
    epochs = DEFAULT_EPOCHS if args.epochs is None else args.epochs
    if epochs < 1:
        raise InputError("--epochs must be at least 1.")
    train_set, val_set, test_set = (_load(folder, s) for s in ("train", "val", "test"))
    config = TrainConfig(method=args.method, epochs=epochs, seed=args.seed, threads=args.threads)

    def report(log):
        print(f"epoch {log.epoch}/{log.epochs}  loss {log.loss:.4f}  val dice {log.val_dice:.4f}"
              f"  (best epoch {log.best_epoch})", flush=True)

    model = run_training(config, train_set, val_set, on_epoch=report)
    rows = score_slices(model.net, test_set)
    write_rows(Path(args.out), rows)
    print(f"{args.method}: best val dice {model.best_val_dice:.4f} at epoch {model.best_epoch}; "
          f"test ({len(rows)} slices) dice {np.mean([r.dice for r in rows]):.4f}  "
          f"iou {np.mean([r.iou for r in rows]):.4f}  -> {args.out}")
    return 0
