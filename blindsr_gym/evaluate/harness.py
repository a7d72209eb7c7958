"""The evaluation loop: kernel settings, data sets, and scoring every (method, dataset, image, kernel)."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from blindsr_gym.errors import InputError

from ..data import ImageFolder, ImageSource, builtin
from ..degradation import degrade
from ..kernels import gaussian8_sigmas, isotropic_gaussian, kernel_psnr
from ..metrics import at_scale, get_metric
from ..utils import check_finite, to_tensor
from .log import PerImageLog
from .methods import Method
from .report import _record


def parse_kernels(spec: str, scale: int = 4, size: int = 21) -> list[tuple[str, torch.Tensor]]:
    """``"gaussian8"`` (sigma = linspace(1.8, 3.2, 8) at x4, DAN/IKC) or ``"sigma:0.2,1.3,2.6"``
    (isotropic, 21x21) to a list of ``(label, kernel)``."""
    spec = spec.strip()
    if spec == "gaussian8":
        sigmas = gaussian8_sigmas(scale)
    elif spec.startswith("sigma:"):
        try:
            sigmas = [float(v) for v in spec[len("sigma:"):].split(",") if v.strip()]
        except ValueError:
            raise InputError(f"bad kernel setting {spec!r}: expected sigma:0.2,1.3,2.6") from None
        if not sigmas or any(not (math.isfinite(s) and s > 0) for s in sigmas):
            raise InputError(f"bad kernel setting {spec!r}: sigmas must be positive numbers")
    else:
        raise InputError(f"unknown kernel setting {spec!r}; use 'gaussian8' or 'sigma:0.2,1.3,2.6'")
    return [(f"sigma={float(s):.2f}", isotropic_gaussian(float(s), size)) for s in sigmas]


def load_datasets(specs: Sequence[str], scale: int = 4) -> dict[str, ImageSource]:
    """``"builtin"`` or folders of HR images, named by the folder's name."""
    out: dict[str, ImageSource] = {}
    for spec in specs:
        src = builtin(mod=scale) if spec == "builtin" else ImageFolder(spec, mod=scale)
        name = "builtin" if spec == "builtin" else Path(spec).expanduser().resolve().name
        if name in out:
            raise InputError(f"two datasets are called {name!r}; rename one folder")
        out[name] = src
    return out


def _digest_array(x) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


def _score(m: Method, lr: torch.Tensor, k: torch.Tensor, hr: torch.Tensor, mets, scale: int):
    """``(sr, {metric: value, ["kernel_psnr": value]})`` of method ``m`` on one LR image."""
    out = m.fn(lr, k.to(lr.device))
    sr, k_hat = out if isinstance(out, tuple) else (out, None)
    if sr.shape != hr.shape:
        raise RuntimeError(f"method {m.name} returned {tuple(sr.shape)} for HR {tuple(hr.shape)}")
    check_finite(sr, f"method {m.name}'s SR image")
    values = {}
    for met in mets:
        v = met(sr, hr) if met.needs_reference else met(sr)
        values[met.name] = float(v.reshape(-1)[0])
    if k_hat is not None:
        kp = kernel_psnr(k_hat.detach().float().cpu().reshape(1, *k.shape), k[None].float().cpu())
        values["kernel_psnr"] = float(kp[0])
    return sr, values


@torch.no_grad()
def evaluate(datasets: dict[str, ImageSource], kernels: list[tuple[str, torch.Tensor]],
             methods: Sequence[Method], metrics: Sequence[str] = ("psnr", "ssim"), scale: int = 4,
             device: str | torch.device = "cpu", max_images: int | None = None, progress: bool = True,
             on_result: Callable | None = None, log: str | Path | None = None, resume: bool = False,
             seconds: dict | None = None) -> list[dict]:
    """One record per (method, dataset, kernel): ``{"method", "dataset", "kernel", "images", <metric>: mean}``.

    ``on_result(method, dataset, image_name, kernel_label, lr, sr, hr)`` sees every output computed in this
    call (figures). ``log``: a :class:`PerImageLog` file; with ``resume`` the entries already in it are
    taken from it, not recomputed (nor shown to ``on_result``). ``seconds``, a dict, receives each method's
    total seconds, those of resumed entries included.
    """
    device = torch.device(device)
    mets = [at_scale(get_metric(m), scale) for m in metrics]  # fidelity metrics crop `scale` pixels
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise InputError(f"method names must be unique, got {names}")
    plog = None
    if log is not None:
        header = {"scale": scale, "metrics": list(metrics),
                  "kernels": [[label, _digest_array(k.float().cpu().numpy())] for label, k in kernels],
                  "methods": {m.name: m.identity for m in methods}}
        plog = PerImageLog(log, header, resume=resume)
    elif resume:
        raise InputError("resume needs a per-image log to resume from")
    sums: dict[tuple, dict[str, list[float]]] = {}
    secs = {m.name: 0.0 for m in methods}
    total = sum(min(len(s), max_images or len(s)) for s in datasets.values()) * len(kernels)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="evaluate", unit="img")
    try:
        for dname, source in datasets.items():
            n = min(len(source), max_images or len(source))
            for i in range(n):
                img = source[i]
                hr_digest = _digest_array(img) if plog is not None else ""
                hr = to_tensor(img).to(device)
                for klabel, k in kernels:
                    lr = None
                    for m in methods:
                        rec = sums.setdefault((m.name, dname, klabel), {})
                        entry = plog.get(m.name, dname, source.names[i], klabel, hr_digest) if plog else None
                        if entry is None:
                            if lr is None:
                                lr = degrade(hr, k.to(device), scale)
                            t0 = time.perf_counter()
                            sr, entry = _score(m, lr, k, hr, mets, scale)
                            entry = {"method": m.name, "dataset": dname, "image": source.names[i], "kernel": klabel,
                                     **entry, "hr": hr_digest, "s": round(time.perf_counter() - t0, 4)}
                            if plog is not None:
                                plog.add(entry)
                            if on_result is not None:
                                on_result(m.name, dname, source.names[i], klabel, lr, sr, hr)
                        rec.setdefault("_images", []).append(source.names[i])
                        for key in [met.name for met in mets] + (["kernel_psnr"] if "kernel_psnr" in entry else []):
                            rec.setdefault(key, []).append(entry[key])
                        secs[m.name] += entry["s"]
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if plog is not None:
            plog.close()
    if seconds is not None:
        seconds.update({k: round(v, 1) for k, v in secs.items()})
    return [_record(key, vals) for key, vals in sums.items()]
