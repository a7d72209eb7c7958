"""SR methods for the evaluation: a registry of factories (``register_method``), the package's methods
(bicubic, the renderer with the true kernel, the RL actors, KENet, DAN, a fixed kernel), and ``make_method``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from blindsr_gym.errors import InputError

from ..agents import DEFAULT_NIQE_ACTOR, DEFAULT_PSNR_ACTOR
from ..degradation import imresize
from ..kernels import isotropic_gaussian
from ..utils import weights_digest


@dataclass
class Method:
    """``fn(lr, kernel) -> sr`` or ``(sr, estimated_kernel)``: LR float ``[1, 3, h, w]`` in [0, 1], the
    true ``[l, l]`` kernel (only non-blind methods may look at it), SR float in [0, 1], the estimate
    ``[1, l, l]``. ``checkpoints`` are the model files whose cards ``--card-key`` updates. ``identity``
    names what the method computes with (a digest of its weights, its parameters): a per-image log made
    with another identity is not resumed."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor | tuple[torch.Tensor, torch.Tensor]]
    blind: bool = True
    checkpoints: tuple[Path, ...] = ()
    identity: str = ""


METHODS: dict[str, Callable[..., Method]] = {}


def register_method(name: str, factory: Callable[..., Method]) -> None:
    """``factory(scale=..., device=..., renderer=...) -> Method``; later registrations replace earlier ones."""
    METHODS[name] = factory


def _bicubic(scale: int = 4, **_) -> Method:
    return Method("bicubic", lambda lr, k: imresize(lr, float(scale)).clamp(0, 1), blind=True, identity="bicubic")


def _load_renderer(renderer, device, scale, arch=None):
    from ..renderers import _resolve, load_renderer

    if isinstance(renderer, torch.nn.Module):
        model, path = renderer, None
    else:
        model, path = load_renderer(renderer, device=device, arch=arch), _resolve(renderer)
    if model.scale != scale:
        raise InputError(f"{renderer if path is None else path.name} is x{model.scale}, evaluation is x{scale}")
    return model, path


def _paths(*ps) -> tuple[Path, ...]:
    return tuple(p for p in ps if p is not None)


def _true_kernel(name: str, scale: int, device, renderer, **_) -> Method:
    model, path = _load_renderer(renderer, device, scale)

    @torch.no_grad()
    def fn(lr, k):
        code = model.codec.encode(k[None].to(lr.device))
        return model(lr, code)

    return Method(name, fn, blind=False, checkpoints=_paths(path), identity=weights_digest(model))


def _gt(scale: int = 4, device="cpu", renderer="amnet_x4", **_) -> Method:
    return _true_kernel("gt", scale, device, renderer)


def _amgan_gt(scale: int = 4, device="cpu", gan_renderer="amgan_x4", **_) -> Method:
    return _true_kernel("amgan-gt", scale, device, gan_renderer)


def _rl(name: str, scale: int, device, renderer, actor, ensemble: bool = False) -> Method:
    from ..agents import SelfEnsemble, load_actor
    from ..agents import _resolve as resolve_actor

    model, rpath = _load_renderer(renderer, device, scale)
    if isinstance(actor, torch.nn.Module):
        pol, apath = actor, None
    else:
        pol, apath = load_actor(actor, device=device, codec=model.codec), resolve_actor(actor)
    if ensemble:
        pol = SelfEnsemble(pol)

    @torch.no_grad()
    def fn(lr, k):
        code = model.codec.action_to_code(pol(lr))
        return model(lr, code), model.codec.decode(code)

    return Method(name, fn, blind=True, checkpoints=_paths(apath), identity=weights_digest(model, pol))


def _amnet_rl(scale: int = 4, device="cpu", renderer="amnet_x4", actor=DEFAULT_PSNR_ACTOR, **_) -> Method:
    return _rl("amnet-rl", scale, device, renderer, actor)


def _amnet_rl_ens(scale: int = 4, device="cpu", renderer="amnet_x4", actor=DEFAULT_PSNR_ACTOR, **_) -> Method:
    return _rl("amnet-rl-ens", scale, device, renderer, actor, ensemble=True)


def _amgan_rl(scale: int = 4, device="cpu", gan_renderer="amgan_x4", gan_actor=DEFAULT_NIQE_ACTOR, **_) -> Method:
    return _rl("amgan-rl", scale, device, gan_renderer, gan_actor)


def _kenet(scale: int = 4, device="cpu", renderer="amnet_x4", kenet="kenet_x4", **_) -> Method:
    from ..agents.kenet import load_kenet, resolve_kenet

    model, _ = _load_renderer(renderer, device, scale)
    if isinstance(kenet, torch.nn.Module):
        est, kpath = kenet, None
    else:
        est = load_kenet(kenet, device=device)
        kpath = resolve_kenet(kenet)
    if est.kernel_size != model.codec.size:
        raise InputError(f"KENet estimates {est.kernel_size}x{est.kernel_size} kernels; the renderer's codec "
                         f"encodes {model.codec.size}x{model.codec.size}")

    @torch.no_grad()
    def fn(lr, k):
        k_hat = est(lr)
        return model(lr, model.codec.encode(k_hat)), k_hat

    return Method("kenet", fn, blind=True, checkpoints=_paths(kpath), identity=weights_digest(model, est))


def _dan(scale: int = 4, device="cpu", dan="dan_x4", **_) -> Method:
    model, path = _load_renderer(dan, device, scale, arch="dan")

    @torch.no_grad()
    def fn(lr, k):
        srs, codes = model(lr)
        return srs[-1].clamp(0, 1), model.codec.decode(codes[-1])

    return Method("dan", fn, blind=True, checkpoints=_paths(path), identity=weights_digest(model))


def _fixed(scale: int = 4, device="cpu", renderer="amnet_x4", fixed_sigma: float = 2.2, **_) -> Method:
    fixed_sigma = float(fixed_sigma)
    if not (math.isfinite(fixed_sigma) and fixed_sigma > 0):
        raise InputError(f"--fixed-sigma must be a positive number, got {fixed_sigma}")
    model, _ = _load_renderer(renderer, device, scale)
    code = model.codec.encode(isotropic_gaussian(fixed_sigma, model.codec.size).float()[None])

    # no kernel estimate is reported: the kernel PSNR of a constant is meaningless (and infinite, which
    # would dominate a Gaussian8 mean, where the width is one of the eight)
    @torch.no_grad()
    def fn(lr, k):
        return model(lr, code.to(lr.device).expand(len(lr), -1))

    return Method("fixed", fn, blind=True, identity=f"{weights_digest(model)} sigma={fixed_sigma!r}")


register_method("bicubic", _bicubic)
register_method("gt", _gt)
register_method("amgan-gt", _amgan_gt)
register_method("amnet-rl", _amnet_rl)
register_method("amnet-rl-ens", _amnet_rl_ens)
register_method("amgan-rl", _amgan_rl)
register_method("kenet", _kenet)
register_method("dan", _dan)
register_method("fixed", _fixed)


def make_method(name: str, **kwargs) -> Method:
    if name not in METHODS:
        raise InputError(f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[name](**kwargs)
