"""The metric registry: one row per metric with the metadata the rewards need.

The reward sign comes from ``Metric.lower_better`` and nowhere else.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from blindsr_gym.errors import InputError, UnknownNameError

__all__ = ["Metric", "register_metric", "get_metric", "list_metrics", "at_scale"]


@dataclass(frozen=True)
class Metric:
    """An image-quality metric: ``metric(sr, hr=None)`` returns a float tensor of shape ``[N]``.

    ``sr`` / ``hr``: float NCHW RGB in [0, 1]. ``needs_reference``: the metric compares against
    ``hr`` (full-reference); otherwise ``hr`` is ignored (no-reference). ``options``: keyword arguments
    passed to ``fn`` on every call (``get_metric("psnr", crop_border=2)``).
    """

    name: str
    fn: Callable[..., torch.Tensor] = field(repr=False)
    lower_better: bool
    needs_reference: bool = False
    description: str = ""
    options: dict = field(default_factory=dict)

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
            out = self.fn(sr, hr, **self.options)
        else:
            out = self.fn(sr, **self.options)
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
                                                   fn.description, dict(fn.options))
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


def _keyword_options(fn: Callable) -> set[str] | None:
    """The keyword arguments ``fn`` accepts besides the images (None: any, it takes ``**kwargs``)."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return set()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.default is not inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)} - {"hr"}


def get_metric(name: str | Metric, **options) -> Metric:
    """A metric by name (``"niqe"``, ``"psnr"``, ``"ssim"``, ``"pyiqa:<name>"``, or a registered one), with
    ``options`` for its function, e.g. ``get_metric("psnr", crop_border=2)`` or ``get_metric("pyiqa:lpips",
    device="cuda")``; an option the metric does not take is an error naming those it does."""
    if isinstance(name, Metric):
        metric = name
    elif not isinstance(name, str):
        raise TypeError(f"metric must be a name or a Metric, got {type(name).__name__}")
    elif name.startswith("pyiqa:"):
        from .pyiqa_adapter import pyiqa_metric

        metric = pyiqa_metric(name[len("pyiqa:"):], device=str(options.pop("device", "cpu")))
    elif name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownNameError(f"unknown metric {name!r}{hint} Registered: {', '.join(list_metrics())}; "
                               "pyiqa metrics as 'pyiqa:<name>'")
    else:
        metric = _REGISTRY[name]
    if not options:
        return metric
    accepted = _keyword_options(metric.fn)
    unknown = sorted(set(options) - accepted) if accepted is not None else []
    if unknown:
        raise InputError(f"metric {metric.name!r} takes no option {', '.join(unknown)}; its options are "
                         f"{', '.join(sorted(accepted)) or 'none'}")
    return replace(metric, options={**metric.options, **options})


def at_scale(metric: Metric, scale: int) -> Metric:
    """``metric`` as the SR papers score at ``scale``: a full-reference metric that takes ``crop_border``
    (PSNR, SSIM) crops ``scale`` pixels unless its options already say otherwise; others unchanged."""
    accepted = _keyword_options(metric.fn)
    if metric.needs_reference and "crop_border" not in metric.options and accepted and "crop_border" in accepted:
        return replace(metric, options={**metric.options, "crop_border": int(scale)})
    return metric
