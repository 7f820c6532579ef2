"""`train-correction`: train the click correction network (models/correction) on MSD imagesTr."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAME = "train-correction"
HELP = "train the click correction network (engine correction-net) on DATA/imagesTr"


def add_arguments(parser):
    parser.add_argument("--data", default=str(REPO / ".." / "shared" / "data" / "bench"),
                        help="MSD-layout folder with imagesTr/ and labelsTr/")
    parser.add_argument("--out", default=str(REPO / "models" / "weights" / "correction_net.pt"))
    parser.add_argument("--minutes", type=float, default=12.0, help="wall-clock budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-case", type=int, default=120, help="about 4 patches per slice")
    parser.add_argument("--no-unet", action="store_true",
                        help="simulated errors only (skip the shipped U-Net's real errors)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--init", default=None, help="continue from these correction weights")
    parser.add_argument("--patch-cache", default=None,
                        help=".npz to store the prepared patches in, or reuse them from")


def run(args) -> int:
    import torch

    from models.correction.training import train

    torch.set_num_threads(args.threads)
    best, _ = train(args.data, args.out, minutes=args.minutes, seed=args.seed,
                    per_case=args.per_case, use_unet=not args.no_unet, init=args.init,
                    patch_cache=args.patch_cache,
                    log=lambda m: print(m, flush=True))
    print(f"best validation patch Dice {best:.4f}; weights {args.out}")
    return 0
