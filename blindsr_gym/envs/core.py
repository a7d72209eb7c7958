"""What the single and the vector environment share: drawing episodes, degrading, rendering, scoring.

Both environments call the same functions with one ``numpy.random.Generator`` per sub-environment,
in the same order (image index, crop position, kernel parameters, noise), so a vector env seeded
with ``seed`` reproduces the single envs seeded with ``seed + i``.

The images live on the env's device (:class:`~blindsr_gym.synthesis.DeviceImages`); an episode is its
window and kernel, and a batch of episodes is cut and degraded there in one pass (Eq. 1,
:func:`~blindsr_gym.degradation.eq1`): the CPU only draws the random numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from blindsr_gym.errors import InputError, InputTypeError

from ..data import ImageFolder, ImageSource, builtin
from ..degradation import eq1, imresize
from ..kernels import IsotropicFamily, KernelFamily, get_family, isotropic_gaussian, isotropic_taps
from ..metrics import at_scale
from ..renderers import AMNet, compiled_blocks
from ..rewards import Reward, make_reward
from ..synthesis import DeviceImages
from ..utils import check_finite, cuda_graphed, resolve_device, to_device, to_uint8

OPTION_KEYS = ("image_index", "kernel", "sigma", "noise")
MAX_GRAPHS = 2  # CUDA graphs an env captures (cuda_graphs=True): the batch's shape, and one more
PRECISIONS = ("fp32", "bf16")


def resolve_renderer(renderer, device: torch.device) -> nn.Module:
    """A shipped name or checkpoint path (loaded frozen), ``"bicubic"`` (the fake), or a module."""
    from ..renderers import build_renderer, load_renderer

    if isinstance(renderer, nn.Module):
        if getattr(renderer, "conditional", True) is False:
            raise InputTypeError(f"{type(renderer).__name__} is a blind SR method, not a renderer G(lr, code)")
        for attr in ("codec", "scale"):
            if not hasattr(renderer, attr):
                raise InputTypeError(f"a renderer module needs .{attr} (see blindsr_gym.renderers)")
        return renderer.eval().requires_grad_(False).to(device)
    if isinstance(renderer, (str, Path)):
        if str(renderer) == "bicubic":
            return build_renderer("bicubic").eval().to(device)
        model = load_renderer(renderer, device=device)
        if getattr(model, "conditional", True) is False:
            raise InputTypeError(f"{renderer}: a {model.arch!r} checkpoint is a blind SR method, "
                                 "not a renderer G(lr, code)")
        return model
    raise InputTypeError(f"renderer must be a shipped name, a checkpoint path, 'bicubic' or a module, "
                    f"got {type(renderer).__name__}")


@dataclass
class Episode:
    image_index: int
    top: int  # the crop's window in the image (HR pixels; LR pixels for real LR input)
    left: int
    kernel: torch.Tensor | None  # [k, k] (None for real LR input)
    params: dict  # the kernel's parameters, e.g. {"sigma": 1.3}
    noise: float
    noise_draw: np.ndarray | None = None  # the episode's standard-normal noise [3, h, w] when noise > 0
    family_params: dict | None = None  # the family's parameters until draw_all makes the kernel
    taps: np.ndarray | None = None  # [k] float64 when the kernel is outer(taps, taps) (isotropic Gaussians)
    source: dict | None = None  # the generator's state before this draw: EnvCore.observations() redraws it


@dataclass
class Batch:
    """The episodes of a reset, as both envs keep them (one for the single env): the LR observations, and
    unless the input is real LR, the HR crops, the true kernels' codes, the renders with them (the
    baseline), the baseline's scores and its PSNR against HR."""

    episodes: list[Episode]
    lr: torch.Tensor
    hr: torch.Tensor | None = None
    codes_gt: torch.Tensor | None = None
    sr_gt: torch.Tensor | None = None
    baseline: dict[str, torch.Tensor] | None = None
    psnr_gt: np.ndarray | None = None


@dataclass
class EnvConfig:
    """What defines an environment's episodes and reward: the keyword arguments of :class:`BlindSREnv`,
    :class:`BlindSRVectorEnv` and ``gym.make`` (the class docstring of BlindSREnv describes each)."""

    renderer: Any = "amnet_x4"  # shipped name, checkpoint path, "bicubic" (the fake) or a module
    metric: Any = "psnr"  # a metric name, a Metric, or a dict of weights (a composite reward)
    reward_mode: str = "relative"  # "relative" (Eq. 8) or "absolute"
    dataset: Any = None  # folder of HR images or an ImageSource; None: the built-in photographs
    lr_dataset: Any = None  # folder of real LR images instead (absolute no-reference rewards only)
    scale: int | None = None  # must match the renderer's; None: the renderer's
    lr_size: int = 64  # side of the LR observation
    kernel_family: Any = "isotropic"  # "isotropic", "anisotropic", "dan_setting2" or a KernelFamily
    noise: float = 0.0  # additive noise sigma in 8-bit levels
    device: Any = "auto"  # "auto": CUDA when present
    precision: str = "fp32"  # "fp32", or "bf16" autocast for the renderer
    cuda_graphs: bool = False  # on a GPU: renders replayed from CUDA graphs, one per batch shape
    compile: bool = False  # AMNet's residual blocks through torch.compile (renderers.compiled_blocks)

    @classmethod
    def build(cls, config: EnvConfig | None = None, **overrides) -> EnvConfig:
        """``config`` (default: the defaults) with ``overrides``; an unknown keyword is named."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise InputTypeError(f"unknown environment argument(s) {', '.join(unknown)}; the arguments are "
                                 f"{', '.join(sorted(names))}")
        if config is not None and not isinstance(config, EnvConfig):
            raise InputTypeError(f"config must be an EnvConfig, got {type(config).__name__}")
        return replace(config or cls(), **overrides)


SR_WHAT = "the renderer's SR image"


class EnvCore:
    """Holds the renderer, reward, data and kernel family of an environment, built from an
    :class:`EnvConfig` (or its fields as keywords)."""

    def __init__(self, config: EnvConfig | None = None, **overrides):
        self.config = cfg = EnvConfig.build(config, **overrides)
        renderer, metric, reward_mode, dataset, lr_dataset = (cfg.renderer, cfg.metric, cfg.reward_mode,
                                                              cfg.dataset, cfg.lr_dataset)
        scale, lr_size, kernel_family, noise, precision = (cfg.scale, cfg.lr_size, cfg.kernel_family, cfg.noise,
                                                           cfg.precision)
        self.device = resolve_device(cfg.device)
        self.renderer = resolve_renderer(renderer, self.device)
        # NHWC convolutions: faster with oneDNN on the CPU and with cuDNN's tensor-core kernels on a GPU
        self.renderer = self.renderer.to(memory_format=torch.channels_last)
        self.render_chunk = 8 if self.device.type == "cpu" else None
        # Eq. 1 of isotropic Gaussians as two matrix products per image (eq1's taps) off the CPU. On the CPU
        # the two-step path stays: its LR images are bit for bit the per-image degrade()'s, which keeps NIQE
        # rewards on the CPU equal to the reference's (a one-level change in a few LR pixels can move NIQE by
        # 1e-2: docs/experiments/2026-11-28_host_side.md)
        self.separable_eq1 = self.device.type != "cpu"
        self.codec = self.renderer.codec
        self.scale = int(self.renderer.scale)
        if scale is not None and scale != self.scale:
            raise InputError(f"scale={scale} but the renderer is x{self.scale}")
        if not isinstance(lr_size, (int, np.integer)) or lr_size < 8:
            raise InputError(f"lr_size must be an integer >= 8, got {lr_size!r}")
        self.lr_size = int(lr_size)
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        if not isinstance(cfg.cuda_graphs, bool):
            raise InputError(f"cuda_graphs must be True or False, got {cfg.cuda_graphs!r}")
        self.cuda_graphs = cfg.cuda_graphs and self.device.type == "cuda"
        if not isinstance(cfg.compile, bool):
            raise InputError(f"compile must be True or False, got {cfg.compile!r}")
        if cfg.compile and not isinstance(self.renderer, AMNet):
            raise InputError(f"compile=True runs AMNet's residual blocks through torch.compile; the renderer is a "
                             f"{type(self.renderer).__name__}")
        self.compile = cfg.compile
        self._graphs: dict = {}
        if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
            raise InputError(f"noise must be a noise sigma >= 0 in 8-bit levels, got {noise!r}")
        self.noise = float(noise)
        reward = make_reward(metric, reward_mode)  # fidelity metrics crop `scale` pixels, as the papers score
        self.reward: Reward = Reward([(at_scale(m, self.scale), w) for m, w in reward.terms], reward.mode)

        self.real_lr = lr_dataset is not None
        if self.real_lr:
            if dataset is not None:
                raise InputError("give dataset (HR images, LR synthesised) or lr_dataset (real LR), not both")
            self.reward.check_reference(hr_available=False)
            if self.reward.mode == "relative" or self.reward.composite:
                raise InputError("with real LR input there is no true kernel, so no Eq. 8 baseline: "
                                 "use reward_mode='absolute' with a single no-reference metric")
            self.source = _source(lr_dataset, 1)
            side = self.lr_size
        else:
            self.source = _source(dataset, self.scale)
            side = self.lr_size * self.scale
        self.family = get_family(kernel_family, size=self.codec.size) if isinstance(kernel_family, str) \
            else kernel_family
        if not isinstance(self.family, KernelFamily):
            raise InputTypeError(f"kernel_family must be a name or a KernelFamily, got {type(kernel_family).__name__}")
        if self.family.size != self.codec.size:
            raise InputError(f"kernel family is {self.family.size}x{self.family.size} but the renderer's codec "
                             f"is for {self.codec.size}x{self.codec.size} kernels")
        self.images = DeviceImages(self.source, self.device)
        self.crop_side = side
        self.eligible = [i for i, shape in enumerate(self.images.shapes) if min(shape) >= side]
        if not self.eligible:
            raise InputError(f"no image in the dataset is at least {side}x{side} pixels (lr_size={self.lr_size})")
        self._probe_metric()

    def _probe_metric(self):
        """Fail at construction, not at the first step, when the metric cannot score this size."""
        s = self.lr_size * self.scale
        probe = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(0), device="cpu").to(self.device)
        try:
            self.reward.scores(probe, probe if not self.real_lr else None)
        except ValueError as e:
            raise InputError(f"metric cannot score {s}x{s} SR images (lr_size={self.lr_size}): {e}") from None

    # -- episodes ---------------------------------------------------------------------------
    def draw(self, rng: np.random.Generator, options: dict | None = None) -> Episode:
        """One episode from ``rng``: :meth:`draw_all` with one generator."""
        return self.draw_all([rng], options)[0]

    def draw_all(self, rngs: list[np.random.Generator], options: dict | None = None) -> list[Episode]:
        """One episode drawn from each generator (CPU only): what :meth:`new_batch` draws first.

        Each generator is drawn in the per-image order (image index, window, kernel parameters, noise); the
        kernels of the family's draws are then made for all episodes in one call of ``family.make`` (for
        the built-in families the same kernels, bit for bit, as one call per episode)."""
        opts = self._check_options(options)
        eps = [self._draw(r, opts) for r in rngs]
        drawn = [ep for ep in eps if ep.kernel is None and ep.family_params is not None]
        if drawn:
            keys = list(drawn[0].family_params)
            params = {k: np.concatenate([np.atleast_1d(ep.family_params[k]) for ep in drawn]) for k in keys}
            kernels = self.family.make(**params)
            # the built-in isotropic family's kernels are outer(taps, taps): Eq. 1 then runs separably
            taps = isotropic_taps(params["sigma"], self.family.size) if type(self.family) is IsotropicFamily \
                else [None] * len(drawn)
            for ep, k, t in zip(drawn, kernels, taps, strict=True):
                ep.kernel, ep.family_params, ep.taps = k, None, t
        return eps

    def observations(self, sources: list[dict], options: dict | None = None, chunk: int = 256) -> np.ndarray:
        """The LR observations (uint8 ``[N, h, w, 3]``) of the episodes drawn from ``sources``, each a generator
        state of :attr:`Episode.source`, under the same reset ``options``: the draws and Eq. 1 again, without a
        render. On the device that drew them the same bytes (Eq. 1 does not depend on the batch's makeup); a
        replay buffer keeps these states instead of its images (``agents/ddpg.py``)."""
        out = np.empty((len(sources), self.lr_size, self.lr_size, 3), np.uint8)
        for i in range(0, len(sources), chunk):
            rngs = generators_at(sources[i:i + chunk])
            with torch.inference_mode():
                out[i:i + len(rngs)] = to_uint8(self.degrade(self.draw_all(rngs, options)))
        return out

    def _check_options(self, options: dict | None) -> dict:
        opts = dict(options or {})
        unknown = set(opts) - set(OPTION_KEYS)
        if unknown:
            raise InputError(f"unknown reset option(s) {sorted(unknown)}; known: {list(OPTION_KEYS)}")
        index = opts.get("image_index")
        if index is not None:
            if not isinstance(index, (int, np.integer)) or not 0 <= index < len(self.source):
                raise InputError(f"image_index must be in [0, {len(self.source)}), got {index!r}")
            if index not in self.eligible:
                raise InputError(f"image {index} ({self.source.names[index]}) is smaller than the crop")
        noise = opts.get("noise", self.noise)
        try:
            ok = math.isfinite(float(noise)) and float(noise) >= 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"noise must be >= 0, got {noise!r}")
        if "kernel" in opts and "sigma" in opts:
            raise InputError("give options 'kernel' or 'sigma', not both")
        return opts

    def _draw(self, rng: np.random.Generator, opts: dict) -> Episode:
        """An episode's draws from ``rng``; a kernel drawn from the family is left to :meth:`draw_all`
        (``kernel=None``, its parameters in ``family_params``)."""
        source = rng.bit_generator.state
        index = opts.get("image_index")
        if index is None:
            index = int(self.eligible[int(rng.integers(len(self.eligible)))])
        noise = float(opts.get("noise", self.noise))
        shape = self.images.shapes[index]
        index, top, left = self.source.random_window(rng, self.crop_side, index, shape=shape)
        if self.real_lr:
            return Episode(index, top, left, None, {}, 0.0, source=source)
        kernel, params, family_params = self._kernel(rng, opts)
        draw = None
        if noise > 0:  # drawn here, after the kernel's parameters, as the per-image degrade() drew it
            draw = rng.standard_normal((1, 3, self.lr_size, self.lr_size), dtype=np.float32)[0]
        taps = isotropic_taps(params["sigma"], self.codec.size)[0] if "sigma" in opts else None
        return Episode(index, top, left, kernel, params, noise, draw, family_params, taps, source)

    def _kernel(self, rng, opts) -> tuple[torch.Tensor | None, dict, dict | None]:
        """``(kernel, info params, family params)``: a given kernel or sigma, or the family's draw (its kernel
        made later, in one batch)."""
        if "kernel" in opts:
            k = torch.as_tensor(np.asarray(opts["kernel"], dtype=np.float32))
            size = self.codec.size
            if k.shape != (size, size):
                raise InputError(f"options['kernel'] must be {size}x{size}, got {tuple(k.shape)}")
            if not torch.isfinite(k).all() or abs(float(k.sum()) - 1) > 1e-3 or (k < -1e-6).any():
                raise InputError("options['kernel'] must be finite, non-negative and sum to 1")
            return k, {}, None
        if "sigma" in opts:
            sigma = opts["sigma"]
            if not isinstance(sigma, (int, float, np.floating)) or not (math.isfinite(sigma) and sigma > 0):
                raise InputError(f"options['sigma'] must be a positive number, got {sigma!r}")
            return isotropic_gaussian(float(sigma), self.codec.size), {"sigma": float(sigma)}, None
        params = self.family.sample_params(rng, 1)
        flat = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in params.items() if np.asarray(v).size == 1}
        return None, flat, params

    def crops(self, episodes: list[Episode]) -> torch.Tensor:
        """The episodes' crops, float NCHW in [0, 1] on the device: HR, or the LR itself for real LR input."""
        x = self.images.cut([ep.image_index for ep in episodes], [ep.top for ep in episodes],
                            [ep.left for ep in episodes], self.crop_side)
        return x.permute(0, 3, 1, 2).float().div_(255)

    def degrade(self, episodes: list[Episode], hr: torch.Tensor | None = None) -> torch.Tensor:
        """LR float [N, 3, h, w] on the device: Eq. 1 of every episode in one batched pass (each with its own
        kernel and noise). ``hr``: the episodes' crops when the caller has them already."""
        if self.real_lr:
            return self.crops(episodes)
        hr = self.crops(episodes) if hr is None else hr
        kernels = to_device(torch.stack([ep.kernel for ep in episodes]), self.device)
        noise = None
        if any(ep.noise > 0 for ep in episodes):
            zero = np.zeros((3, self.lr_size, self.lr_size), np.float32)
            draws = torch.from_numpy(np.stack([zero if ep.noise_draw is None else ep.noise_draw for ep in episodes]))
            scale = torch.tensor([ep.noise / 255.0 for ep in episodes], dtype=torch.float32)
            noise = to_device(draws * scale[:, None, None, None], self.device)
        taps = None
        if self.separable_eq1 and all(ep.taps is not None for ep in episodes):  # two matrix products each
            taps = to_device(torch.from_numpy(np.stack([ep.taps for ep in episodes])), self.device)
        return eq1(hr, kernels, self.scale, noise, taps)

    def hr_batch(self, episodes: list[Episode]) -> torch.Tensor | None:
        if self.real_lr:
            return None
        return self.crops(episodes)

    @torch.inference_mode()
    def new_batch(self, rngs: list[np.random.Generator], options: dict | None = None,
                  drawn: list[Episode] | None = None) -> Batch:
        """One episode per generator: draw, degrade, render and score the baseline; redraw (from the same
        stream) only the episodes whose baseline is not finite (a flat crop under NIQE), at most 10 times.
        A single env is a batch of one: both envs draw the same episodes from the same generator.
        ``drawn``: the first draws, made already by :meth:`draw_all` from the same generators (the vector
        env draws them while the device is still rendering the previous step)."""
        n = len(rngs)
        idx, eps, b = list(range(n)), [None] * n, None
        for attempt in range(10):
            fresh = drawn if drawn is not None and attempt == 0 else self.draw_all([rngs[i] for i in idx], options)
            for i, ep in zip(idx, fresh, strict=True):
                eps[i] = ep
            sub = [eps[i] for i in idx]
            hr = self.hr_batch(sub)
            lr = self.degrade(sub, hr)
            if self.real_lr:
                return Batch(eps, lr)
            codes = self.codes(sub)
            sr_gt = self.render(lr, codes, check=False)
            baseline = self.score(sr_gt, hr, to_cpu=False)
            psnr_gt = self.hr_psnr(sr_gt, hr, baseline)
            if b is None:
                b = Batch(eps, lr, hr, codes, sr_gt, baseline, psnr_gt)
            else:
                b.lr[idx], b.hr[idx], b.codes_gt[idx], b.sr_gt[idx] = lr, hr, codes, sr_gt
                b.psnr_gt[idx] = psnr_gt
                for k, v in baseline.items():
                    b.baseline[k][idx] = v
            ok = torch.stack([torch.isfinite(v) for v in baseline.values()]).all(0)
            # the batch's one wait for the device: whether the renders are finite and which baselines are
            finite, *good = torch.cat([torch.isfinite(sr_gt).all().reshape(1), ok]).tolist()
            if not finite:
                check_finite(sr_gt, SR_WHAT)  # raises: broken weights must not become a baseline
            idx = [i for i, g in zip(idx, good, strict=True) if not g]
            if not idx:  # b.episodes is `eps`, redrawn in place
                b.baseline = {k: v.cpu() for k, v in b.baseline.items()}
                b.psnr_gt = b.psnr_gt.cpu().numpy()
                return b
        raise InputError("10 draws in a row gave a non-finite baseline metric; is the dataset flat?")

    def codes(self, episodes: list[Episode]) -> torch.Tensor | None:
        if self.real_lr:
            return None
        return to_device(self.codec.encode(torch.stack([ep.kernel for ep in episodes])), self.device)

    @torch.inference_mode()
    def render(self, lr: torch.Tensor, codes: torch.Tensor, check: bool = True) -> torch.Tensor:
        """SR for a batch, in chunks of ``render_chunk`` (on 2 CPU cores a batch of 8 renders faster per
        image than one of 64: benchmarks/renderer_speed.py); on a GPU in one pass. ``check=False`` leaves
        the finite check (which waits for the device) to the caller: ``check_finite(sr, SR_WHAT)``."""
        sr = self._graph_render(lr, codes) if self.cuda_graphs else None
        if sr is not None:
            return check_finite(sr, SR_WHAT) if check else sr
        chunk = self.render_chunk or lr.shape[0]
        out = []
        for i in range(0, lr.shape[0], chunk):
            x = lr[i:i + chunk].contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"), \
                    compiled_blocks(self.compile):
                out.append(self.renderer(x, codes[i:i + chunk]).float().clamp(0, 1).contiguous())
        sr = out[0] if len(out) == 1 else torch.cat(out)
        return check_finite(sr, SR_WHAT) if check else sr  # broken weights must not become a reward

    def _graph_render(self, lr: torch.Tensor, codes: torch.Tensor) -> torch.Tensor | None:
        """The render replayed from a CUDA graph captured at the first batch of this shape: the same kernels
        with one launch from the host instead of hundreds (the graph's output is copied out, as the next
        replay overwrites it). None (render eagerly) for a shape beyond the first ``MAX_GRAPHS``: the odd
        sizes of redrawn episodes are not worth a capture and its memory."""
        key = (tuple(lr.shape), tuple(codes.shape), lr.dtype, codes.dtype)
        if key not in self._graphs and len(self._graphs) >= MAX_GRAPHS:
            return None
        lr = lr.contiguous(memory_format=torch.channels_last)
        if key not in self._graphs:
            def forward(x, c):  # autocast's cast cache must be off while capturing (PyTorch's CUDA graph notes)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.precision == "bf16",
                                    cache_enabled=False), compiled_blocks(self.compile):
                    return self.renderer(x, c).float().clamp(0, 1).contiguous()
            self._graphs[key] = cuda_graphed(forward, lr, codes)
        return self._graphs[key](lr, codes).clone()

    def hr_psnr(self, sr: torch.Tensor, hr: torch.Tensor, scores: dict[str, torch.Tensor]) -> torch.Tensor:
        """PSNR-Y against HR (border = scale) for ``info``, float64 ``[N]`` (where it was computed; the caller
        reads it); reuses the reward's own PSNR pass when it is the same computation, so a PSNR reward is not
        scored twice."""
        from ..metrics import psnr

        same = any(m.name == "psnr" and m.fn is psnr and m.options == {"crop_border": self.scale}
                   for m, _ in self.reward.terms)
        if "psnr" in scores and same:
            return scores["psnr"]
        return psnr(sr, hr, crop_border=self.scale).to(torch.float64)

    def score(self, sr: torch.Tensor, hr: torch.Tensor | None, to_cpu: bool = True) -> dict[str, torch.Tensor]:
        """The reward's metrics of ``sr``, float64 ``[N]`` each: on the CPU, or (``to_cpu=False``) where they
        were computed, without waiting for the device."""
        with torch.inference_mode():
            return self.reward.scores(sr, hr, to_cpu)

    # -- actions ----------------------------------------------------------------------------
    def check_actions(self, actions, n: int | None) -> tuple[np.ndarray, np.ndarray]:
        """``(clipped float32 actions, per-row clipped flag)``; wrong shape or non-finite raises."""
        length = self.codec.length
        try:
            a = np.asarray(actions, dtype=np.float32)
        except (TypeError, ValueError):
            raise InputError(f"action must be an array of {length} numbers, got {type(actions).__name__}") from None
        want = (length,) if n is None else (n, length)
        if a.shape != want:
            raise InputError(f"action must have shape {want}, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise InputError("action contains NaN or inf")
        clipped = np.clip(a, -1.0, 1.0)
        flags = np.any(clipped != a, axis=-1)
        return clipped, flags

    def bicubic(self, lr: torch.Tensor) -> torch.Tensor:
        return imresize(lr, float(self.scale)).clamp(0, 1)

    def panel(self, lr, sr_action, sr_gt, hr) -> np.ndarray:
        """One row: bicubic LR | SR with the action | SR with the true kernel | HR (uint8 HWC)."""
        tiles = [self.bicubic(lr)]
        blank = torch.full_like(tiles[0], 0.5)
        for t in (sr_action, sr_gt, hr):
            tiles.append(blank if t is None else t)
        return to_uint8(torch.cat(tiles, dim=-1))[0]


def generators_at(states: list[dict]) -> list[np.random.Generator]:
    """Generators of the sub-envs' kind, each set to one of ``states`` (``bit_generator.state`` dicts)."""
    from gymnasium.utils import seeding

    rngs = [seeding.np_random(0)[0] for _ in states]
    for r, st in zip(rngs, states, strict=True):
        r.bit_generator.state = st
    return rngs


def _source(dataset, mod: int) -> ImageSource:
    if dataset is None:
        return builtin(mod=mod)
    if isinstance(dataset, ImageSource):
        return dataset
    if isinstance(dataset, (str, Path)):
        if str(dataset) == "builtin":
            return builtin(mod=mod)
        return ImageFolder(dataset, mod=mod, recursive=True, cache=True)
    raise InputTypeError(f"dataset must be a folder path, 'builtin' or an ImageSource, got {type(dataset).__name__}")


__all__ = ["EnvCore", "Episode", "resolve_renderer"]
