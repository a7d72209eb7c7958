"""Rewards: Eq. 8 and the ways to design others.

    r = zeta * ( M(G(LR, code)) - M(G(LR, code_GT)) )        (Eq. 8, ``mode="relative"``)
    r = zeta * M(G(LR, code))                                 (``mode="absolute"``)

``zeta = -1`` when lower is better (NIQE), ``+1`` otherwise; the sign comes from the metric's
``lower_better`` and nowhere else. The second term is the *baseline*: it depends only on the episode,
so environments compute it once at reset (:meth:`Reward.baseline_scores`).

A composite reward is a dict of weights, ``{"niqe": 1.0, "psnr": 0.1}``. Metrics live on different
scales (NIQE ~3-10, PSNR ~20-35 dB, SSIM 0-1), so each term is normalised by the magnitude of its
own baseline value in the episode:

    r = sum_i  w_i * zeta_i * (M_i(SR) - M_i(SR_GT)) / |M_i(SR_GT)|    (relative)
    r = sum_i  w_i * zeta_i *  M_i(SR)               / |M_i(SR_GT)|    (absolute)

i.e. every term is a signed relative change (a fraction of the true-kernel score). A single metric
with weight 1 is not normalised: it is Eq. 8 exactly, in the metric's units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from blindsr_gym.errors import InputError

from .metrics import Metric, get_metric

__all__ = ["Reward", "make_reward", "REWARD_MODES"]

REWARD_MODES = ("relative", "absolute")
_EPS = 1e-8


def _as_metric(spec) -> Metric:
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, str):
        return get_metric(spec)
    if callable(spec):
        raise TypeError("a plain callable has no lower_better; register it first with "
                        "blindsr_gym.metrics.register_metric(name, fn, lower_better=...) and pass the name")
    raise TypeError(f"metric must be a name, a Metric or a dict of weights, got {type(spec).__name__}")


@dataclass
class Reward:
    """Scores SR images with one metric or a weighted set, and turns scores into rewards."""

    terms: list[tuple[Metric, float]]
    mode: str = "relative"

    def __post_init__(self):
        if self.mode not in REWARD_MODES:
            raise InputError(f"reward_mode must be one of {REWARD_MODES}, got {self.mode!r}")
        if not self.terms:
            raise InputError("a reward needs at least one metric")
        for m, w in self.terms:
            if not isinstance(w, (int, float)) or not torch.isfinite(torch.tensor(float(w))):
                raise InputError(f"weight of {m.name!r} must be a finite number, got {w!r}")

    @property
    def composite(self) -> bool:
        return len(self.terms) > 1 or self.terms[0][1] != 1.0

    @property
    def needs_reference(self) -> bool:
        return any(m.needs_reference for m, _ in self.terms)

    @property
    def names(self) -> list[str]:
        return [m.name for m, _ in self.terms]

    @property
    def name(self) -> str:
        if not self.composite:
            return self.terms[0][0].name
        return "+".join(f"{w:g}*{m.name}" for m, w in self.terms)

    def check_reference(self, hr_available: bool) -> None:
        if self.needs_reference and not hr_available:
            need = [m.name for m, _ in self.terms if m.needs_reference]
            raise InputError(f"metric(s) {need} compare against HR, which is unknown here (real LR input); "
                             "use no-reference metrics such as 'niqe'")

    def scores(self, sr: torch.Tensor, hr: torch.Tensor | None, to_cpu: bool = True) -> dict[str, torch.Tensor]:
        """Every metric's raw value, ``{name: float64 [N]}``, on the CPU; with ``to_cpu=False`` where the metric
        computed it (on a GPU: without waiting for it)."""
        out = {m.name: m(sr, hr).to(torch.float64) for m, _ in self.terms}
        return {k: v.cpu() for k, v in out.items()} if to_cpu else out

    def reward(self, scores: Mapping[str, torch.Tensor], baseline: Mapping[str, torch.Tensor] | None) -> torch.Tensor:
        """Rewards ``[N]`` from :meth:`scores` of the action's SR and of the true-kernel SR (baseline)."""
        if baseline is None and (self.mode == "relative" or self.composite):
            raise InputError("this reward needs the true-kernel baseline (relative mode or a composite reward), "
                             "which is unknown here; use reward_mode='absolute' with a single metric")
        total = None
        for m, w in self.terms:
            zeta = -1.0 if m.lower_better else 1.0
            s = scores[m.name]
            term = s - baseline[m.name] if self.mode == "relative" else s
            if self.composite:
                term = term / (baseline[m.name].abs() + _EPS)
            term = w * zeta * term
            total = term if total is None else total + term
        return total


def make_reward(metric: str | Metric | Mapping[str, float] | Reward = "niqe", mode: str = "relative") -> Reward:
    """``metric``: a registry name (``"niqe"``, ``"psnr"``, ``"ssim"``, ``"pyiqa:<name>"``), a
    :class:`Metric`, a dict of weights ``{"niqe": 1.0, "psnr": 0.1}`` (keys are names or
    Metrics' names), or a ready :class:`Reward`."""
    if isinstance(metric, Reward):
        return metric if metric.mode == mode else Reward(metric.terms, mode)
    if isinstance(metric, Mapping):
        terms = [(_as_metric(k), float(w)) for k, w in metric.items()]
        names = [m.name for m, _ in terms]
        if len(set(names)) != len(names):
            raise InputError(f"a metric appears twice in {names}")
        return Reward(terms, mode)
    return Reward([(_as_metric(metric), 1.0)], mode)

