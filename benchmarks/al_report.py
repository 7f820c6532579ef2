"""Tables, CSVs and the plot of the active-learning benchmark (benchmarks/active_learning.py)."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from al_plot import line_plot


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Area under the learning curve over the labelled fraction, divided by the fraction range:
    the curve's mean Dice (1.0 would be perfect from the first round on)."""
    return float(np.trapezoid(y, x) / (x[-1] - x[0])) if x[-1] > x[0] else float(y[0])


def fraction_to_reach(x: np.ndarray, y: np.ndarray, target: float) -> float:
    """First labelled fraction at which the curve reaches target (linear between rounds); NaN if never."""
    if y[0] >= target:
        return float(x[0])
    for i in range(1, len(y)):
        if y[i] >= target:
            return float(x[i - 1] + (target - y[i - 1]) / (y[i] - y[i - 1]) * (x[i] - x[i - 1]))
    return float("nan")


def _fmt(v: float, digits: int = 4) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)


def report(results: dict, cfg, n_pool: int, out_dir: Path, results_dir: Path, tag: str = "",
           minutes: float = 0.0, threads: int = 0) -> None:
    seeds = sorted(results)
    strategies = [s for s in cfg.strategies]
    n_labelled = np.array([cfg.n0 + r * cfg.queries for r in range(cfg.rounds + 1)])
    x = n_labelled / n_pool
    full = np.array([results[s]["full"] for s in seeds])
    target = 0.95 * float(full.mean())

    curves = {}
    for strategy in strategies:
        curves[strategy] = np.array([[results[s]["round0"]] +
                                     [row["dice"] for row in results[s]["strategies"][strategy]]
                                     for s in seeds])
    # ---- per-round curves
    rows = []
    for strategy, y in curves.items():
        for r in range(cfg.rounds + 1):
            rows.append([strategy, r, int(n_labelled[r]), _fmt(x[r], 3), _fmt(y[:, r].mean()),
                         _fmt(y[:, r].std(ddof=1) if len(seeds) > 1 else 0.0), len(seeds),
                         ";".join(_fmt(v) for v in y[:, r])])
    _write(results_dir / f"active_learning_curves{tag}.csv",
           ["strategy", "round", "n_labelled", "fraction", "dice_mean", "dice_sd", "n_seeds",
            "dice_per_seed"], rows)

    # ---- summary metrics
    metric_rows = []
    print(f"\nActive learning on {n_pool} pool cases, test Dice (mean ± sd over {len(seeds)} seeds); "
          f"full pool {full.mean():.4f} ± {full.std(ddof=1) if len(seeds) > 1 else 0:.4f}, "
          f"95 % target {target:.4f}")
    head = f"{'strategy':12s} " + " ".join(f"{int(n):>13d}" for n in n_labelled) + \
        f" {'AUC':>15s} {'frac@95%':>9s}"
    print(head)
    for strategy, y in curves.items():
        aucs = np.array([auc(x, y[i]) for i in range(len(seeds))])
        reach_each = np.array([fraction_to_reach(x, y[i], 0.95 * full[i]) for i in range(len(seeds))])
        reach_mean = fraction_to_reach(x, y.mean(axis=0), target)
        sd = (lambda a: a.std(ddof=1) if len(a) > 1 else 0.0)
        metric_rows.append([strategy, _fmt(aucs.mean()), _fmt(sd(aucs)), _fmt(y[:, -1].mean()),
                            _fmt(sd(y[:, -1])), _fmt(reach_mean, 3),
                            ";".join(_fmt(v, 3) or "never" for v in reach_each),
                            int(np.sum(~np.isnan(reach_each))), _fmt(full.mean()), _fmt(sd(full)),
                            _fmt(target), _fmt(x[-1], 3)])
        cells = " ".join(f"{y[:, r].mean():.3f}±{sd(y[:, r]):.3f}" for r in range(cfg.rounds + 1))
        reach_txt = f"{reach_mean:.3f}" if not math.isnan(reach_mean) else f">{x[-1]:.2f}"
        print(f"{strategy:12s} {cells} {aucs.mean():.4f}±{sd(aucs):.4f} {reach_txt:>9s}")
    _write(results_dir / f"active_learning_metrics{tag}.csv",
           ["strategy", "auc_mean", "auc_sd", "final_dice_mean", "final_dice_sd",
            "fraction_for_95pct_full_of_mean_curve", "fraction_for_95pct_full_per_seed",
            "seeds_reaching_95pct", "full_pool_dice_mean", "full_pool_dice_sd", "target_dice",
            "max_fraction_simulated"], metric_rows)

    # ---- score vs true error (MC strategies)
    corr: dict[str, list[float]] = {}
    for s in seeds:
        for strategy, rows_ in results[s]["strategies"].items():
            for row in rows_:
                for key, v in row.get("score_error_spearman", {}).items():
                    if v == v:
                        corr.setdefault(key, []).append(v)
    if corr:
        print("\nSpearman(score, 1 - Dice) over the unlabelled pool, per MC round "
              "(higher = the score ranks cases by their real error)")
        crow = []
        for key in sorted(corr, key=lambda k: -np.mean(corr[k])):
            v = np.array(corr[key])
            measure, region = key.split("/")
            crow.append([measure, region, _fmt(v.mean(), 3), _fmt(v.std(ddof=1) if len(v) > 1 else 0, 3),
                         len(v)])
            print(f"  {key:22s} {v.mean():+.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}  (n={len(v)})")
        _write(results_dir / f"active_learning_score_error{tag}.csv",
               ["measure", "region", "spearman_mean", "spearman_sd", "n_rounds"], crow)

    # ---- details (git-ignored)
    detail = []
    for s in seeds:
        for strategy, rows_ in results[s]["strategies"].items():
            for row in rows_:
                detail.append([s, strategy, row["round"], row["n_labelled"], _fmt(row["dice"]),
                               " ".join(row["picked"]), row["score_seconds"], row["train_seconds"],
                               ";".join(_fmt(v, 3) for v in row["per_case"])])
    _write(out_dir / f"rounds_detail{tag}.csv",
           ["seed", "strategy", "round", "n_labelled", "dice", "picked", "score_seconds",
            "train_seconds", "dice_per_test_case"], detail)
    if minutes:      # a computing run (not --report-only): keep its wall time and settings
        (out_dir / f"run{tag}.json").write_text(json.dumps(
            {"minutes": round(minutes, 1), "threads": threads, "seeds": seeds,
             "initial": {s: results[s]["initial"] for s in seeds}}, indent=1), encoding="utf-8")

    series = {}
    for strategy, y in curves.items():
        sd = y.std(axis=0, ddof=1) if len(seeds) > 1 else np.zeros(y.shape[1])
        series[strategy] = (list(n_labelled), list(y.mean(axis=0)), list(sd))
    line_plot(results_dir / f"active_learning{tag}.png", series,
              f"Active learning on bench ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}, "
              f"mean ± sd)", f"labelled pool cases (of {n_pool})", "test Dice",
              hlines=[(float(full.mean()), "full pool"), (target, "95 % of full")],
              xticks=[int(n) for n in n_labelled])
    print(f"\nwrote {results_dir}/active_learning_*{tag}.csv and .png; details in {out_dir}")
