"""PROTOCOLS.md §3: active-learning simulation, every strategy in one run on the same cases.

    python benchmarks/active_learning.py [--data ../shared/data/bench] [--seeds 0,1,2] [--tiny | --gpu-full]

Pool = imagesTr (labels hidden until a case is "annotated"), test = imagesTs. Per seed: n0 random
pool cases form the initial labelled set and a 2D U-Net (with dropout) is trained on them; that
round-0 model and set are shared by every strategy. Then, per strategy, R rounds of: score the
unlabelled pool with the strategy's sampler (app.core.active_learning, the same code as the app),
move the top q cases into the labelled set, fine-tune the model (not reset, as in seed 001) on
all labelled cases, and measure test Dice (per case on the original grid, then the mean). A
full-pool model (all pool cases, as many optimiser steps as the whole AL run) per seed gives the
reference for "fraction of the pool needed for 95 % of full-pool Dice".

For the MC strategies every round also records how well each (measure, region) aggregation of the
same MC passes ranks the pool cases by their true error (Spearman of score vs 1 - Dice): the
measurement behind the samplers' default region.

Defaults are sized for about an hour on a 2-core CPU (96 px, a small U-Net, short fine-tuning,
MC on every 2nd slice); --gpu-full is the full-size protocol. Results per (seed, strategy) are kept
in benchmarks/out/active_learning/ and reused when the run is restarted with the same settings.
Writes benchmarks/results/active_learning_{curves,metrics,score_error}.csv and active_learning.png.
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from app.core.active_learning import PoolCase, ScoringContext, get_sampler  # noqa: E402
from app.core.active_learning.base import digest  # noqa: E402
from app.core.active_learning.mc_dropout import (MEASURES, REGIONS, case_mc_steps,  # noqa: E402
                                                 score_from_stats)
from app.core.active_learning.round_training import (RoundConfig, load_labelled_cases,  # noqa: E402
                                                     new_model, train_round_steps)
from app.core.jobs import run_job  # noqa: E402
from models import preprocess  # noqa: E402
from models.training.dataset import list_cases  # noqa: E402
from models.training.validation import dice, predict_small  # noqa: E402
from models.vaal import VAALConfig  # noqa: E402

STRATEGIES = ("random", "mc-variance", "mc-entropy", "vaal", "mvaal")
MC_STRATEGIES = ("mc-variance", "mc-entropy", "mc-bald")
OUT = REPO / "benchmarks" / "out" / "active_learning"
RESULTS = REPO / "benchmarks" / "results"


@dataclass
class BenchConfig:
    data: str = str((REPO / ".." / "shared" / "data" / "bench").resolve())
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    strategies: list = field(default_factory=lambda: list(STRATEGIES))
    n0: int = 4
    rounds: int = 5
    queries: int = 4
    input_size: int = 96
    channels: list = field(default_factory=lambda: [8, 16, 32, 64])
    dropout: float = 0.2
    context: int = 1
    init_steps: int = 300
    round_steps: int = 150
    full_steps: int = 0              # 0: init_steps + rounds * round_steps (the AL run's budget)
    batch_size: int = 16
    lr: float = 1e-3
    mc: int = 6
    stride: int = 2
    vaal_steps: int = 150
    vaal_size: int = 64
    vaal_latent: int = 32
    vaal_widths: list = field(default_factory=lambda: [16, 32, 64, 128])
    vaal_batch: int = 16

    def round_config(self) -> RoundConfig:
        return RoundConfig(input_size=self.input_size, context=self.context,
                           channels=tuple(self.channels), dropout=self.dropout,
                           steps=self.round_steps, batch_size=self.batch_size, lr=self.lr)

    def key(self) -> str:
        # what determines a (seed, strategy) result: everything but the lists of seeds/strategies
        return digest(json.dumps({k: v for k, v in asdict(self).items()
                                  if k not in ("seeds", "strategies")}, sort_keys=True), 10)


PRESETS = {
    "tiny": dict(seeds=[0], n0=3, rounds=2, queries=3, init_steps=40, round_steps=20, mc=2,
                 stride=4, vaal_steps=20),
    "gpu-full": dict(seeds=[0, 1, 2, 3, 4], n0=5, rounds=6, queries=5, input_size=128,
                     channels=[16, 32, 64, 128, 128], init_steps=1500, round_steps=600, mc=10,
                     stride=1, vaal_steps=1000, vaal_widths=[32, 64, 128, 256], vaal_batch=32),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------- data and model

class Data:
    def __init__(self, cfg: BenchConfig):
        t = time.monotonic()
        names = pool_names(cfg)
        test_names = [n for n, _, label in list_cases(cfg.data, "Ts") if label is not None]
        self.pool = {c.name: c for c in load_labelled_cases(cfg.data, names, cfg.input_size)}
        self.test = load_labelled_cases(cfg.data, test_names, cfg.input_size, "Ts", keep_original=True)
        for case in self.test:
            case.original_image = None          # only the label's grid is needed
        self.names = sorted(self.pool)
        self.cases = {n: PoolCase(n, modality=c.modality, name=n, prepared={cfg.input_size: c.image})
                      for n, c in self.pool.items()}
        log(f"loaded {len(self.pool)} pool and {len(self.test)} test cases "
            f"({sum(len(c.image) for c in self.pool.values())} pool slices) in {time.monotonic() - t:.0f} s")


def evaluate(model, cases) -> list[float]:
    out = []
    for case in cases:
        prob, _ = predict_small(model.network, case, model.context, model.device)
        full = preprocess.resize_slices(prob, case.original_label.shape[1:], order=1)
        out.append(dice(full >= 0.5, case.original_label))
    return out


def train(model, cases, cfg: BenchConfig, steps: int, seed: int):
    return run_job(train_round_steps(model, cases, cfg.round_config(), seed=seed, steps=steps))


# ------------------------------------------------------------------------------- one strategy

def mc_round(model, cases, strategy, data: Data, ctx: ScoringContext, size: int):
    """Scores of the strategy's own measure, plus Spearman(score, true error) for every
    (measure, region) computed from the same MC passes."""
    sampler = get_sampler(strategy)
    table = {(m, r): [] for m in MEASURES for r in REGIONS}
    errors, scores = [], {}
    for pc in cases:
        stats = run_job(case_mc_steps(model, pc, ctx.mc_samples, ctx.seed, ctx.slice_stride))
        small = pc.small(size)
        for key in table:
            table[key].append(score_from_stats(stats, small, *key))
        truth = data.pool[pc.case_id].label[stats.slices]
        errors.append(1.0 - dice(stats.mean >= 0.5, truth))
        scores[pc.case_id] = score_from_stats(stats, small, sampler.measure, sampler.region)
    corr = {f"{m}/{r}": float(spearmanr(v, errors)[0]) if np.std(errors) > 0 else float("nan")
            for (m, r), v in table.items()}
    return scores, corr


def run_strategy(strategy: str, seed: int, model0, initial: list[str], data: Data,
                 cfg: BenchConfig) -> list[dict]:
    model = copy.deepcopy(model0)
    labelled = list(initial)
    sampler = None
    if strategy in ("vaal", "mvaal"):
        sampler = get_sampler(strategy, config=VAALConfig(
            size=cfg.vaal_size, latent=cfg.vaal_latent, steps=cfg.vaal_steps,
            widths=tuple(cfg.vaal_widths), batch_size=cfg.vaal_batch))
    elif strategy not in MC_STRATEGIES:
        sampler = get_sampler(strategy)
    rows = []
    for r in range(1, cfg.rounds + 1):
        unlabelled = [n for n in data.names if n not in labelled]
        ctx = ScoringContext(model=model, labelled=[data.cases[n] for n in labelled],
                             mc_samples=cfg.mc, seed=seed * 1000 + r, slice_stride=cfg.stride)
        t = time.monotonic()
        corr = {}
        if strategy in MC_STRATEGIES:
            scores, corr = mc_round(model, [data.cases[n] for n in unlabelled], strategy, data, ctx,
                                    cfg.input_size)
        else:
            scores = sampler.score([data.cases[n] for n in unlabelled], ctx)
        t_score = time.monotonic() - t
        picks = sorted(unlabelled, key=lambda n: (-scores[n], n))[: cfg.queries]
        labelled += picks
        t = time.monotonic()
        train(model, [data.pool[n] for n in labelled], cfg, cfg.round_steps, seed * 1000 + r)
        t_train = time.monotonic() - t
        per_case = evaluate(model, data.test)
        rows.append({"seed": seed, "strategy": strategy, "round": r, "n_labelled": len(labelled),
                     "dice": float(np.mean(per_case)), "per_case": per_case, "picked": picks,
                     "score_seconds": round(t_score, 1), "train_seconds": round(t_train, 1),
                     "score_error_spearman": corr})
        log(f"seed {seed} {strategy:11s} round {r}: {len(labelled)} labelled, test Dice "
            f"{rows[-1]['dice']:.4f} (scoring {t_score:.0f} s, training {t_train:.0f} s), "
            f"picked {', '.join(picks)}")
    return rows


class Missing(Exception):
    """A result that --report-only would have to compute."""


def cached(path: Path, compute, allowed: bool = True):
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    if not allowed:
        raise Missing(str(path))
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1), encoding="utf-8")
    tmp.replace(path)
    return value


def run_seed(seed: int, data: Data | None, cfg: BenchConfig, compute: bool = True) -> dict:
    """One seed: round 0, the full-pool reference, then every strategy (each cached on disk, so a
    restarted run continues and a partial run can be reported). compute=False: cached only."""
    folder = OUT / f"cfg_{cfg.key()}" / f"seed{seed}"
    rng = np.random.default_rng(seed)
    initial = sorted(rng.choice(sorted(pool_names(cfg)), cfg.n0, replace=False).tolist())
    model0 = None

    def load_model0():
        nonlocal model0
        weights = folder / "round0.pt"
        model0 = new_model(cfg.round_config(), seed=seed)
        if weights.exists():
            model0.network.load_state_dict(torch.load(weights, weights_only=True))
        else:
            t = time.monotonic()
            train(model0, [data.pool[n] for n in initial], cfg, cfg.init_steps, seed)
            folder.mkdir(parents=True, exist_ok=True)
            torch.save(model0.network.state_dict(), weights)
            log(f"seed {seed}: round-0 model on {', '.join(initial)} in {time.monotonic() - t:.0f} s")

    def round0():
        load_model0()
        return {"per_case": evaluate(model0, data.test)}

    def full_pool():
        t = time.monotonic()
        model = new_model(cfg.round_config(), seed=seed)
        steps = cfg.full_steps or cfg.init_steps + cfg.rounds * cfg.round_steps
        train(model, list(data.pool.values()), cfg, steps, seed)
        per_case = evaluate(model, data.test)
        log(f"seed {seed}: full pool ({len(data.pool)} cases, {steps} steps) test Dice "
            f"{np.mean(per_case):.4f} in {time.monotonic() - t:.0f} s")
        return {"per_case": per_case, "steps": steps}

    result = {"initial": initial, "strategies": {}}
    result["round0"] = float(np.mean(cached(folder / "round0.json", round0, compute)["per_case"]))
    log(f"seed {seed}: round-0 test Dice {result['round0']:.4f} ({', '.join(initial)})")
    # the reference first, so that a partial run already has it
    result["full"] = float(np.mean(cached(folder / "full_pool.json", full_pool, compute)["per_case"]))
    for strategy in cfg.strategies:
        def run(s=strategy):
            if model0 is None:
                load_model0()
            return run_strategy(s, seed, model0, initial, data, cfg)
        result["strategies"][strategy] = cached(folder / f"{strategy}.json", run, compute)
    return result


def pool_names(cfg: BenchConfig) -> list[str]:
    return [n for n, _, label in list_cases(cfg.data, "Tr") if label is not None]


# ------------------------------------------------------------------------------- report

def main(argv=None) -> int:
    from al_report import report   # benchmarks/ is on sys.path when run as a script

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = BenchConfig()
    parser.add_argument("--data", default=d.data)
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES),
                        help=f"comma-separated, from random, {', '.join(MC_STRATEGIES)}, vaal, mvaal")
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--tiny", action="store_true", help="1 seed, 2 rounds, a few steps: a smoke test")
    preset.add_argument("--gpu-full", action="store_true",
                        help="full-size protocol (128 px, wider U-Net, 5 seeds, 6 rounds of 5; for a GPU)")
    for name in ("n0", "rounds", "queries", "input_size", "init_steps", "round_steps", "full_steps",
                 "mc", "stride", "vaal_steps", "batch_size"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--report-only", action="store_true",
                        help="report the seeds whose results are all on disk (a partial run); compute nothing")
    parser.add_argument("--tag", default="", help="suffix for the result files (e.g. _tiny)")
    args = parser.parse_args(argv)

    values = {}
    if args.tiny:
        values.update(PRESETS["tiny"])
    if args.gpu_full:
        values.update(PRESETS["gpu-full"])
    for name in ("n0", "rounds", "queries", "input_size", "init_steps", "round_steps", "full_steps",
                 "mc", "stride", "vaal_steps", "batch_size"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.seeds:
        values["seeds"] = [int(s) for s in args.seeds.split(",")]
    values["strategies"] = [s for s in args.strategies.split(",") if s]
    values["data"] = str(Path(args.data).resolve())
    cfg = BenchConfig(**values)
    unknown = set(cfg.strategies) - set(STRATEGIES) - set(MC_STRATEGIES)
    if unknown:
        parser.error(f"unknown strategies: {', '.join(sorted(unknown))}")
    torch.set_num_threads(args.threads)
    log(f"config {cfg.key()}: {json.dumps(asdict(cfg))}")
    log(f"machine: {platform.processor() or platform.machine()}, torch threads {args.threads}, "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}")
    t = time.monotonic()
    n_pool = len(pool_names(cfg))
    if cfg.n0 + cfg.rounds * cfg.queries > n_pool:
        parser.error("n0 + rounds * queries exceeds the pool")
    if args.report_only:
        results = {}
        for seed in cfg.seeds:
            try:
                results[seed] = run_seed(seed, None, cfg, compute=False)
            except Missing as missing:
                log(f"seed {seed} incomplete (no {Path(str(missing)).name}): left out")
        if not results:
            log("no seed has every result yet")
            return 1
    else:
        data = Data(cfg)
        results = {seed: run_seed(seed, data, cfg) for seed in cfg.seeds}
    report(results, cfg, n_pool, OUT / f"cfg_{cfg.key()}", RESULTS, args.tag,
           minutes=None if args.report_only else (time.monotonic() - t) / 60, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
