"""VAAL and M-VAAL samplers (seed 000): task-agnostic, they compare unlabelled with labelled slices.

`prepare` trains the VAE and discriminator on every slice of the labelled cases and of the pool
(downsampled to 64 px); a case's score is the mean over its slices of 1 - P(labelled) from the
discriminator, so cases unlike anything labelled so far come first.

M-VAAL's second decoder reconstructs an auxiliary map. The seed uses a second MR sequence on the
same grid; a case may carry one (PoolCase.aux). Our data has no co-registered pairs, so otherwise
the map is the current model's foreground probability (its CAM for a tags-only model): the latent
then has to encode where the model sees tumour, and cases whose predictions look unlike the
labelled ones stand out.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from app.core.active_learning.base import PoolCase, Sampler, ScoringContext, digest
from app.core.active_learning.scoring import model_version
from app.core.jobs import Job, Progress
from models import preprocess
from models.networks import cam_from_class_map
from models.vaal import VAALConfig, VAALModel, config_dict, train_vaal_steps, unlabelled_probability


def _slices(case: PoolCase, size: int, stride: int) -> np.ndarray:
    return case.small(size)[:: max(1, stride)]


@torch.no_grad()
def model_map(model, case: PoolCase, size: int, stride: int = 1, batch_size: int = 32) -> np.ndarray:
    """The model's deterministic foreground map of a case (probability, or the volume-normalised
    CAM for tags-only models) resized to size x size, every `stride`-th slice."""
    network = model.network
    small = case.small(model.input_size, model.normalisation)
    rows = np.arange(0, small.shape[0], max(1, stride))
    use_cam = getattr(model, "mask_source", "seg") == "cam"
    was_training = network.training
    network.eval()
    device = next(network.parameters()).device
    out_maps = []
    try:
        for start in range(0, len(rows), batch_size):
            x = torch.from_numpy(preprocess.stack_neighbours(small, model.context,
                                                             rows[start:start + batch_size]))
            out = network(x.to(device, dtype=torch.float32))
            if use_cam and "class_map" in out:
                out_maps.append(cam_from_class_map(out["class_map"]).float().cpu().numpy())
            else:
                out_maps.append(torch.sigmoid(out["seg"][:, 0]).float().cpu().numpy())
    finally:
        network.train(was_training)
    maps = np.concatenate(out_maps)
    if use_cam:
        peak = float(maps.max())
        maps = maps / peak if peak > 0 else maps
    return preprocess.resize_slices(maps, (size, size), order=1)


def _aux_slices(case: PoolCase, size: int, stride: int) -> np.ndarray:
    modality = preprocess.guess_modality(case.aux)
    prepared = preprocess.prepare_volume(case.aux, modality, size)
    return prepared[:: max(1, stride)]


class VAALSampler(Sampler):
    """Plain VAAL: one decoder, image only."""

    name = "vaal"
    needs_labelled = True
    uses_aux = False

    def __init__(self, config: VAALConfig | None = None):
        self.config = config or VAALConfig()
        self._fitted: tuple[str, VAALModel] | None = None

    def _key(self, cases: Sequence[PoolCase], context: ScoringContext) -> str:
        ids = ",".join(sorted(str(c.case_id) for c in cases))
        labelled = ",".join(sorted(str(c.case_id) for c in context.labelled))
        model = model_version(context.model) if self.depends_on_model(context) else ""
        return digest(f"{ids}|{labelled}|{model}|{self.settings(context)}")

    def _aux(self, case: PoolCase, context: ScoringContext, stride: int) -> np.ndarray | None:
        return None

    def prepare(self, cases: Sequence[PoolCase], context: ScoringContext) -> Job[None]:
        key = self._key(cases, context)
        if self._fitted is not None and self._fitted[0] == key:
            return                      # resumed in the same session: the fit is still valid
        stride = context.slice_stride
        size = self.config.size
        labelled_ids = {c.case_id for c in context.labelled}
        pool = [c for c in cases if c.case_id not in labelled_ids]
        yield Progress(0, self.config.steps, f"{self.name}: preparing slices")
        xl = np.concatenate([_slices(c, size, stride) for c in context.labelled])
        xu = np.concatenate([_slices(c, size, stride) for c in pool])
        al = au = None
        if self.uses_aux:
            al = np.concatenate([self._aux(c, context, stride) for c in context.labelled])
            au = np.concatenate([self._aux(c, context, stride) for c in pool])
        config = VAALConfig(**{**config_dict(self.config), "seed": context.seed,
                               "device": context.device or self.config.device})
        steps = train_vaal_steps(xl, xu, config, al, au)
        while True:
            try:
                done, total = next(steps)
            except StopIteration as stop:
                model = stop.value
                break
            if done % 10 == 0 or done == total:
                yield Progress(done, total, f"training {self.name} ({len(xl)} labelled, "
                                            f"{len(xu)} unlabelled slices)")
        self._fitted = (key, model)

    def score_case(self, case: PoolCase, context: ScoringContext) -> Job[float]:
        if self._fitted is None:
            raise RuntimeError(f"{self.name}: prepare() must run before score_case()")
        model = self._fitted[1]
        probs = unlabelled_probability(model, _slices(case, self.config.size, context.slice_stride))
        yield Progress(1, 1, "discriminator")
        return float(np.mean(probs))

    def settings(self, context: ScoringContext) -> str:
        c = self.config
        return (f"seed={context.seed},stride={context.slice_stride},size={c.size},latent={c.latent},"
                f"steps={c.steps},adv={c.adversary_weight}")


class MVAALSampler(VAALSampler):
    """M-VAAL: a second decoder reconstructs an auxiliary map (second modality, else model map)."""

    name = "mvaal"
    uses_aux = True

    def prepare(self, cases: Sequence[PoolCase], context: ScoringContext) -> Job[None]:
        every = list(cases) + list(context.labelled)
        self._use_modality = all(c.aux is not None for c in every)
        if not self._use_modality and context.model is None:
            raise ValueError("the 'mvaal' sampler needs a second modality for every case or a "
                             "segmentation model whose probability map it can reconstruct")
        yield from super().prepare(cases, context)

    def depends_on_model(self, context: ScoringContext) -> bool:
        # the model's map is what the second decoder learns, so a new model means new scores
        return context.model is not None

    def _aux(self, case: PoolCase, context: ScoringContext, stride: int) -> np.ndarray:
        if self._use_modality:
            return _aux_slices(case, self.config.size, stride)
        return model_map(context.model, case, self.config.size, stride)

    def settings(self, context: ScoringContext) -> str:
        return super().settings(context) + ",aux=map-or-modality"
