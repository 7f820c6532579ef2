"""`train --data DIR --mode unet|fpsnet-weak|fpsnet-mixed`: train a segmentation model.

Runs the training loop of models/training in this process (the GUI starts this command as a child
process). The best checkpoint by validation Dice is written atomically to --out with its sidecar.
"""
from __future__ import annotations

import sys
from pathlib import Path

NAME = "train"
HELP = "train a segmentation model (U-Net, FPSNet from tags, FPSNet with mixed supervision)"
REPO = Path(__file__).resolve().parents[2]


def add_arguments(parser):
    from models.training.trainer import MODES, TrainConfig

    d = TrainConfig(data_dir="")
    parser.add_argument("--data", required=True,
                        help="dataset in MSD/nnU-Net layout (imagesTr/, labelsTr/), e.g. ../shared/data/bench")
    parser.add_argument("--mode", choices=MODES, default="unet")
    parser.add_argument("--strong-fraction", type=float, default=None,
                        help="fpsnet-mixed: fraction of training cases whose strong labels are used (default 0.2)")
    parser.add_argument("--init", default=None,
                        help="checkpoint to start from (fpsnet-mixed: the tags-only FPSNet)")
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--steps-per-epoch", type=int, default=d.steps_per_epoch)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--input-size", type=int, default=d.input_size,
                        help="in-plane size slices are resized to (multiple of 16)")
    parser.add_argument("--context", type=int, default=d.context,
                        help="neighbouring slices on each side given as extra channels (2.5D)")
    parser.add_argument("--crop", type=int, default=None,
                        help="unet: train on random crops of this size (multiple of 16) for speed")
    parser.add_argument("--balance", choices=("case", "slice"), default=d.balance,
                        help="case: every training volume drawn equally often (default); "
                             "slice: every slice equally often")
    parser.add_argument("--dice", choices=("batch", "slice"), default=d.dice,
                        help="soft Dice term over the whole batch (default) or per slice with "
                             "foreground (small objects count as much as large ones)")
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--dropout", type=float, default=d.dropout)
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop after the epoch that passes this wall-clock budget")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", default=None, help="weights file to write (.pt; sidecar .json beside it)")
    parser.add_argument("--full-precision", action="store_true",
                        help="store float32 weights (default float16, half the size)")


def run(args) -> int:
    import torch

    from app.core.errors import InputError
    from models.training.trainer import TrainConfig, train

    data = Path(args.data)
    if not (data / "imagesTr").is_dir() or not (data / "labelsTr").is_dir():
        raise InputError(f"{data} is not a dataset in MSD layout (needs imagesTr/ and labelsTr/).")
    fraction = args.strong_fraction
    if args.mode == "fpsnet-mixed":
        fraction = 0.2 if fraction is None else fraction
        if not 0.0 < fraction <= 1.0:
            raise InputError(f"--strong-fraction must be in (0, 1], got {fraction}.")
    elif fraction is not None:
        raise InputError("--strong-fraction only applies to --mode fpsnet-mixed.")
    out = args.out or str(REPO / "results" / "models" / f"{args.mode}.pt")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(
        data_dir=str(data), mode=args.mode, out=out,
        strong_fraction=fraction if fraction is not None else (1.0 if args.mode == "unet" else 0.0),
        epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
        input_size=args.input_size, context=args.context, lr=args.lr, dropout=args.dropout,
        crop=args.crop, balance=args.balance, dice=args.dice, seed=args.seed, max_minutes=args.max_minutes, init=args.init, device=args.device,
        half=not args.full_precision, command="python main.py train " + " ".join(sys.argv[2:]))
    summary = train(config)
    best = summary["best"]
    print(f"best epoch {best.get('epoch')}: validation Dice {best.get('val_dice', float('nan')):.4f}; "
          f"wrote {out}")
    return 0
