"""The metric registry: one row per metric with the metadata the rewards need.

The reward sign comes from ``Metric.lower_better`` and nowhere else.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from blindsr_gym.errors import InputError, UnknownNameError

__all__ = ["Metric", "register_metric", "get_metric", "list_metrics"]


@dataclass(frozen=True)
class Metric:
    """An image-quality metric: ``metric(sr, hr=None)`` returns a float tensor of shape ``[N]``.

    ``sr`` / ``hr``: float NCHW RGB in [0, 1]. ``needs_reference``: the metric compares against
    ``hr`` (full-reference); otherwise ``hr`` is ignored (no-reference).
    """

    name: str
    fn: Callable[..., torch.Tensor] = field(repr=False)
    lower_better: bool
    needs_reference: bool = False
    description: str = ""

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(sr, torch.Tensor) or sr.dim() != 4 or not sr.is_floating_point():
            raise InputError(f"{self.name}: sr must be a float NCHW tensor in [0, 1], got "
                             f"{getattr(sr, 'shape', type(sr).__name__)}")
        if self.needs_reference:
            if hr is None:
                raise InputError(f"metric {self.name!r} is full-reference and needs hr; "
                                 "use a no-reference metric (e.g. 'niqe') where HR is unknown")
            if not isinstance(hr, torch.Tensor) or hr.shape != sr.shape:
                raise InputError(f"{self.name}: hr must be a tensor of the same shape as sr "
                                 f"{tuple(sr.shape)}, got {getattr(hr, 'shape', type(hr).__name__)}")
            out = self.fn(sr, hr)
        else:
            out = self.fn(sr)
        out = torch.as_tensor(out).reshape(-1)
        if out.numel() != sr.shape[0]:
            raise RuntimeError(f"metric {self.name!r} returned {out.numel()} values for {sr.shape[0]} images")
        return out


_REGISTRY: dict[str, Metric] = {}


def _required_positional(fn: Callable) -> int | None:
    """How many positional parameters ``fn`` requires (None when its signature cannot be read)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds and p.default is inspect.Parameter.empty for p in params)


def register_metric(name: str, fn: Callable | Metric, lower_better: bool | None = None,
                    needs_reference: bool | None = None, description: str = "",
                    overwrite: bool = False) -> Metric:
    """Register ``fn(sr[, hr]) -> [N]`` under ``name`` (or a ready :class:`Metric`).

    ``sr`` and ``hr`` are float NCHW RGB tensors in [0, 1] on the env's device; ``fn`` returns one score
    per image. ``lower_better`` is required (it sets the reward's sign). ``needs_reference``: whether ``fn``
    compares with ``hr``; by default read from its signature (``fn(sr, hr)``: full-reference,
    ``fn(sr)``: no-reference), and an explicit value that contradicts the signature is an error.
    """
    if not isinstance(name, str) or not name or name.startswith("pyiqa:"):
        raise InputError(f"invalid metric name {name!r} (non-empty; 'pyiqa:' is reserved)")
    if name in _REGISTRY and not overwrite:
        raise InputError(f"metric {name!r} is already registered; pass overwrite=True to replace it")
    if isinstance(fn, Metric):
        metric = fn if fn.name == name else Metric(name, fn.fn, fn.lower_better, fn.needs_reference,
                                                   fn.description)
    else:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if not isinstance(lower_better, bool):
            raise InputError("lower_better=True/False is required: it sets the reward's sign")
        required = _required_positional(fn)
        if needs_reference is None:
            needs_reference = required is not None and required >= 2
        elif required is not None and bool(needs_reference) != (required >= 2) and required in (1, 2):
            raise InputError(f"metric {name!r}: fn takes {required} required argument(s), so it "
                             f"{'compares with hr' if required == 2 else 'scores sr alone'}, but "
                             f"needs_reference={needs_reference}; make them agree")
        metric = Metric(name, fn, lower_better, bool(needs_reference), description)
    _REGISTRY[name] = metric
    return metric


def list_metrics() -> list[str]:
    """Names of the registered metrics (``pyiqa:<name>`` is available on top when pyiqa is installed)."""
    return sorted(_REGISTRY)


def get_metric(name: str | Metric) -> Metric:
    """A metric by name (``"niqe"``, ``"psnr"``, ``"ssim"``, ``"pyiqa:<name>"``, or a registered one)."""
    if isinstance(name, Metric):
        return name
    if not isinstance(name, str):
        raise TypeError(f"metric must be a name or a Metric, got {type(name).__name__}")
    if name.startswith("pyiqa:"):
        from .pyiqa_adapter import pyiqa_metric

        return pyiqa_metric(name[len("pyiqa:"):])
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownNameError(f"unknown metric {name!r}{hint} Registered: {', '.join(list_metrics())}; "
                       "pyiqa metrics as 'pyiqa:<name>'")
    return _REGISTRY[name]
