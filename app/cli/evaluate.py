"""`evaluate --data DIR --model NAME --out CSV`: Dice of a model over DIR/imagesTs vs labelsTs."""
from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

NAME = "evaluate"
HELP = "score a model on a test set in MSD layout (imagesTs/ vs labelsTs/): Dice per case and mean"


def add_arguments(parser):
    parser.add_argument("--data", required=True, help="dataset folder with imagesTs/ and labelsTs/")
    parser.add_argument("--model", default="unet", help="model name or a .pt path")
    parser.add_argument("--out", required=True, help="CSV to write (case, dice, seconds, ...)")
    parser.add_argument("--split", default="Ts", help="Ts (default) or Tr")
    parser.add_argument("--device", default=None)


def evaluate_cases(data_dir, model_name: str, split: str = "Ts", device=None, cleanup="largest",
                   on_case=None) -> list[dict]:
    """One row per labelled case: case, modality, dice, seconds, voxels_true, voxels_pred."""
    from app.core.errors import InputError
    from app.core.segmentation import segment_volume
    from app.core.volume_io import read_label, read_volume
    from models.training.dataset import list_cases
    from models.training.validation import dice

    try:
        entries = [e for e in list_cases(data_dir, split) if e[2] is not None]
    except FileNotFoundError as error:
        raise InputError(f"{error}.") from None
    if not entries:
        raise InputError(f"no labelled cases in {data_dir}/images{split} + labels{split}.")
    rows = []
    for case, image_path, label_path in entries:
        volume = read_volume(image_path)
        truth = read_label(label_path, volume).array > 0
        result = segment_volume(volume, model_name, device=device, cleanup=cleanup)
        rows.append({"case": case, "modality": volume.modality,
                     "dice": round(dice(result.label.array, truth), 4),
                     "seconds": round(result.seconds, 3),
                     "voxels_true": int(truth.sum()), "voxels_pred": int(result.label.array.sum())})
        if on_case:
            on_case(rows[-1])
    return rows


def write_csv(rows: list[dict], path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def run(args) -> int:
    import numpy as np

    rows = evaluate_cases(args.data, args.model, args.split, args.device,
                          on_case=lambda r: print(f"{r['case']:<14} Dice {r['dice']:.4f}  "
                                                  f"{r['seconds']:.2f} s"))
    write_csv(rows, args.out)
    mean = float(np.mean([r["dice"] for r in rows]))
    print(f"{args.model}: mean Dice {mean:.4f} over {len(rows)} cases "
          f"({np.median([r['seconds'] for r in rows]):.2f} s median per volume) -> {args.out}")
    return 0
