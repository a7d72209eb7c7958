"""Any pyiqa metric as a :class:`Metric` (``get_metric("pyiqa:<name>")``); pyiqa is imported only here.

pyiqa fetches most weights at run time, which fails offline. Its NIQE parameter file is seeded
from the copy this package ships, so ``pyiqa:niqe`` works without a network.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from blindsr_gym.errors import UnknownNameError

from .niqe import niqe_params
from .registry import Metric

__all__ = ["pyiqa_metric", "seed_pyiqa_cache"]

_EXTRA_HINT = "install it with: pip install 'blindsr-gym[pyiqa]' (needs torchvision)"


def _import_pyiqa():
    try:
        import pyiqa
    except ImportError as e:
        raise ImportError(f"pyiqa metrics need the optional package pyiqa ({e}); {_EXTRA_HINT}") from None
    return pyiqa


def seed_pyiqa_cache() -> Path:
    """Write pyiqa's ``niqe_modelparameters.mat`` from the shipped NIQE parameters if absent."""
    _import_pyiqa()
    import scipy.io
    from pyiqa.utils.download_util import DEFAULT_CACHE_DIR

    path = Path(DEFAULT_CACHE_DIR) / "niqe_modelparameters.mat"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        p = niqe_params()
        scipy.io.savemat(path, {"mu_prisparam": p["mu"][None], "cov_prisparam": p["cov"]})
    return path


@functools.cache
def pyiqa_metric(name: str, device: str = "cpu") -> Metric:
    """Wrap ``pyiqa.create_metric(name)``; the result is cached per (name, device)."""
    pyiqa = _import_pyiqa()
    available = pyiqa.list_models()
    if name not in available:
        import difflib

        close = difflib.get_close_matches(name, available, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(f"pyiqa has no metric {name!r}{hint}")
    if name == "niqe":
        seed_pyiqa_cache()
    try:
        model = pyiqa.create_metric(name, device=torch.device(device), as_loss=False)
    except Exception as e:  # pyiqa raises various errors when a weight download fails
        raise RuntimeError(
            f"pyiqa could not create {name!r}: {e}. pyiqa downloads most weights at run time; "
            "without network access place the weight file in pyiqa's cache (torch hub dir/pyiqa)") from e
    fr = model.metric_mode == "FR"

    def fn(sr, hr=None):
        with torch.no_grad():
            out = model(sr.to(device), hr.to(device)) if fr else model(sr.to(device))
        return out.reshape(-1).to(torch.float64).cpu()

    return Metric(f"pyiqa:{name}", fn, bool(model.lower_better), fr, f"pyiqa {name}")
