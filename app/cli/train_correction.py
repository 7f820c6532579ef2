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
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    parser.add_argument("--patch", type=int, default=None,
                        help="input patch side in pixels (default: --init's, else 64); a "
                             "multiple of 8")
    parser.add_argument("--max-zoom", type=float, default=None,
                        help="the patch may widen up to this factor to hold a large object "
                             "(shrunk to the input size); default: --init's, else 1")
    parser.add_argument("--synthetic", type=int, default=0,
                        help="slices per training case given a synthetic lesion of random shape, "
                             "size and contrast (clear objects the tumours alone do not teach)")
    parser.add_argument("--intensity-aug", action="store_true",
                        help="also jitter grey levels (gamma, contrast, noise) of training patches")
    parser.add_argument("--init", default=None, help="continue from these correction weights")
    parser.add_argument("--patch-cache", default=None,
                        help=".npz to store the prepared patches in, or reuse them from")
    parser.add_argument("--sessions", action="store_true",
                        help="iterative training: add patches recorded along robot sessions run "
                             "with the combined engine and the starting weights, and keep the "
                             "epoch whose robot sessions on the validation cases score best")
    parser.add_argument("--session-slices", type=int, default=12,
                        help="training slices per case for the recorded sessions")
    parser.add_argument("--val-slices", type=int, default=6,
                        help="validation slices per case for the session score")
    parser.add_argument("--synthetic-val", type=int, default=12,
                        help="clear synthetic disks added to the validation sessions (0: none)")
    parser.add_argument("--session-cache", default=str(REPO / "benchmarks" / "out" / "train_cache"),
                        help="folder caching the models' proposals on the training volumes")


def run(args) -> int:
    import torch

    from models.correction.training import train

    torch.set_num_threads(args.threads)
    log = lambda m: print(m, flush=True)
    init_meta = _init_sidecar(args.init)
    args.patch = _patch_size(args, init_meta)
    args.max_zoom = _max_zoom(args, init_meta)
    extra, validate, meta = (_session_parts(args, log) if args.sessions else (None, None, None))
    best, _ = train(args.data, args.out, minutes=args.minutes, seed=args.seed,
                    per_case=args.per_case, use_unet=not args.no_unet, init=args.init, lr=args.lr,
                    patch_cache=args.patch_cache, extra_train=extra, validate=validate,
                    extra_meta=meta, patch=args.patch, max_zoom=args.max_zoom,
                    synthetic_per_case=args.synthetic,
                    intensity_aug=args.intensity_aug, log=log)
    what = "session score (mean Dice over clicks 1-5)" if args.sessions else "patch Dice"
    print(f"best validation {what} {best:.4f}; weights {args.out}")
    return 0


def _init_sidecar(init) -> dict:
    """The --init file's sidecar (empty without --init), read once; an ensemble or a file that is
    not ours is one clear error before any work starts."""
    if not init:
        return {}
    from app.core.errors import ModelFileError
    from models.checkpoint import read_sidecar
    from models.correction.checkpoint import require_single_network
    from models.errors import ModelFileError as ModelsModelFileError

    try:
        meta = read_sidecar(Path(init))
        require_single_network(meta, Path(init).name)
    except ModelsModelFileError as error:          # models/ cannot raise app errors itself
        raise ModelFileError(f"Cannot continue from --init: {error}") from None
    return meta


def _patch_size(args, init_meta: dict) -> int:
    from models.correction.inputs import PATCH

    if args.patch is not None:
        if args.patch < 16 or args.patch % 8:
            raise SystemExit(f"error: --patch must be a multiple of 8 and at least 16, got {args.patch}")
        return int(args.patch)
    return int(init_meta.get("input_size", PATCH))


def _max_zoom(args, init_meta: dict) -> float:
    if args.max_zoom is not None:
        if not 1.0 <= args.max_zoom <= 8.0:
            raise SystemExit(f"error: --max-zoom must be between 1 and 8, got {args.max_zoom}")
        return float(args.max_zoom)
    return float(init_meta.get("max_zoom", 1.0))


def _session_parts(args, log):
    """(session patches, validate callable, sidecar notes) for --sessions."""
    import numpy as np

    from app.core.correction_sessions import (combined_engine, session_patches, session_score,
                                              session_slices, synthetic_slices)
    from app.core.refine.correction_net import load_network
    from models.training.dataset import list_cases, split_patients

    names = [c for c, _, label in list_cases(args.data, "Tr") if label is not None]
    start_weights = Path(args.init) if args.init else REPO / "models" / "weights" / "correction_net.pt"
    network, sidecar = load_network(start_weights)
    val_names = set(sidecar.get("training", {}).get("val_cases") or
                    split_patients(names, 0.15, args.seed)[1])
    # The starting weights' own validation cases stay held out, so the selection is fair to both.
    rng = np.random.default_rng(args.seed + 1)
    items = session_slices(args.data, [n for n in names if n not in val_names], rng,
                           args.session_slices, cache_dir=args.session_cache, log=log)
    val_items = session_slices(args.data, [n for n in names if n in val_names],
                               np.random.default_rng(12345), args.val_slices,
                               cache_dir=args.session_cache, log=log)
    # Clear synthetic objects in the score too: iteration 3 of session 4 improved the benchmark
    # while its first click on such objects got much worse (model card).
    val_items += synthetic_slices(np.random.default_rng(54321), args.synthetic_val)
    # The sessions run at the zoom being trained, so they pass through the states it will meet
    # (set on the engine: the network object is load_network's cached one, shared in-process).
    extra = session_patches(combined_engine(network, args.max_zoom), items, rng, log=log,
                            patch=args.patch, max_zoom=args.max_zoom)
    log(f"session patches: {0 if extra is None else len(extra[0])} from {len(items)} slices; "
        f"validation: {len(val_items)} slices")

    def validate(candidate):
        return session_score(combined_engine(candidate), val_items)

    meta = {"session_patches": 0 if extra is None else int(len(extra[0])),
            "session_weights": str(start_weights), "session_train_slices": len(items),
            "session_val_slices": len(val_items), "selection": "validation robot sessions, "
            "combined engine, exact clicker, mean Dice after clicks 1-5"}
    return extra, validate, meta
