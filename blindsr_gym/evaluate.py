"""The evaluation harness: SR methods on folders of HR images, degraded with fixed kernels.

Every HR image is mod-cropped to the scale, degraded with each kernel of the setting (Eq. 1, no
noise, 8-bit LR, as DAN/IKC/the paper), restored by each method, and scored; fidelity metrics on
the MATLAB Y channel with ``crop_border = scale``. Records hold per-(method, dataset, kernel)
means; ``summary`` adds the mean over the kernels of a setting (the paper's Gaussian8 columns).

Methods (``--methods``, comma-separated; more register themselves with :func:`register_method`):

* ``bicubic``: MATLAB bicubic interpolation of the LR;
* ``gt``: the renderer (``--renderer``, default ``amnet_x4``) with the true kernel's code, the upper bound;
* ``amgan-gt``: AMGAN (``--gan-renderer``) with the true kernel's code (the paper's Table 3 reference);
* ``amnet-rl`` / ``amgan-rl``: the shipped actor (``--actor`` / ``--gan-actor``) choosing the code for
  AMNet / AMGAN;
* ``amnet-rl-ens``: ``amnet-rl`` with the test-time self-ensemble of a sigma-head actor
  (:class:`blindsr_gym.agents.SelfEnsemble`: the mean width over 8 flips and rotations of the LR);
* ``kenet``: the two-step pipeline KENet (``--kenet``) + AMNet, the estimated kernel encoded by the
  renderer's codec;
* ``dan``: DAN (``--dan``), which estimates its own code;
* ``fixed``: the renderer with the code of one isotropic kernel of width ``--fixed-sigma`` for every
  image, i.e. a policy that ignores its observation: the floor a kernel estimator has to beat (on Set5
  Gaussian8, sigma 2.2 beats KENet + AMNet; docs/results.md).

Methods that estimate a kernel (the RL actors through the codec, KENet, DAN through its codec)
also get ``kernel_psnr``: the PSNR of the estimated kernel against the true one (KENet's Table 3
figure). ``--figures DIR`` writes one visual comparison panel per (dataset, kernel): an image's
centre crop from every method next to the HR.

Long evaluations (DAN on Set5 + Set14 + BSD100 took 24 to 64 minutes on 2 CPU threads) write
``--log FILE`` as they go, one JSON line per (method, dataset, image, kernel); ``--resume`` continues a
log that stopped, recomputing nothing in it, so a run can be split over sessions and still report the
means an uninterrupted run would. The JSON's ``wall_s`` is this run's; ``method_s`` sums each method's
seconds over all the log.

    blindsr-gym evaluate --data ../shared/data/test/Set5 --kernels gaussian8 --methods bicubic,gt \\
        --renderer amnet_x4 --metrics psnr,ssim --json out.json --markdown out.md
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from blindsr_gym.errors import InputError

from .data import ImageFolder, ImageSource, builtin
from .degradation import degrade, imresize
from .fileio import check_writable, write_text
from .kernels import gaussian8_sigmas, isotropic_gaussian, kernel_psnr
from .metrics import get_metric
from .utils import check_finite, to_tensor, weights_digest  # noqa: F401  (weights_digest: re-exported)

__all__ = ["parse_kernels", "register_method", "make_method", "evaluate", "summarize", "to_markdown",
           "load_datasets", "METHODS"]


# ------------------------------------------------------------------------------------------------
# kernel settings
# ------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------
# methods
# ------------------------------------------------------------------------------------------------


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
    from .renderers import _resolve, load_renderer

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
    from .agents import SelfEnsemble, load_actor
    from .agents import _resolve as resolve_actor

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


def _amnet_rl(scale: int = 4, device="cpu", renderer="amnet_x4", actor="actor_psnr_x4", **_) -> Method:
    return _rl("amnet-rl", scale, device, renderer, actor)


def _amnet_rl_ens(scale: int = 4, device="cpu", renderer="amnet_x4", actor="actor_psnr_x4", **_) -> Method:
    return _rl("amnet-rl-ens", scale, device, renderer, actor, ensemble=True)


def _amgan_rl(scale: int = 4, device="cpu", gan_renderer="amgan_x4", gan_actor="actor_niqe_x4", **_) -> Method:
    return _rl("amgan-rl", scale, device, gan_renderer, gan_actor)


def _kenet(scale: int = 4, device="cpu", renderer="amnet_x4", kenet="kenet_x4", **_) -> Method:
    from .agents.kenet import load_kenet, resolve_kenet

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


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------
# the loop
# ------------------------------------------------------------------------------------------------


class PerImageLog:
    """The per-image results of an evaluation as JSON lines, written as they are computed, so that a long
    run that stops (a session ends, Ctrl-C) loses at most the image in flight and ``resume`` continues it.

    The first line is a header: scale, metrics, the kernels (labels and a digest of their values) and each
    method's ``identity``. Every further line is one (method, dataset, image, kernel): the metric values,
    ``kernel_psnr`` where the method estimates a kernel, ``hr`` (a digest of the HR image) and ``s`` (the
    seconds of the method and its metrics on it). Floats round-trip exactly through JSON, so a resumed
    evaluation reports the same means as an uninterrupted one.
    """

    def __init__(self, path: str | Path, header: dict, resume: bool = False):
        self.path = Path(path)
        self.done: dict[tuple[str, str, str, str], dict] = {}
        if self.path.exists() and self.path.stat().st_size and not resume:
            raise FileExistsError(f"{self.path} exists; pass --resume to continue that evaluation or choose "
                                  f"another --log")
        if resume and self.path.exists() and self.path.stat().st_size:
            self._load(header)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.path, json.dumps({"header": header}) + "\n")
            self.methods = dict(header["methods"])
        self._f = self.path.open("a")

    def _load(self, header: dict) -> None:
        """Recognise the file as one of our logs (header and every entry parse) before changing a byte of it;
        then drop an incomplete last line and record methods new to it, rewriting it atomically."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{self.path} is not a per-image evaluation log (not text); "
                             "it was left untouched") from None
        lines = raw.split("\n")
        tail = "" if raw.endswith("\n") else lines[-1]  # the write in flight when the run stopped
        lines = [ln for ln in (lines if raw.endswith("\n") else lines[:-1]) if ln]
        not_ours = f"{self.path} is not a per-image evaluation log (%s); it was left untouched: choose another --log"
        try:
            old = json.loads(lines[0])["header"]
            entries = [json.loads(ln) for ln in lines[1:]]
            keys = [(e["method"], e["dataset"], e["image"], e["kernel"]) for e in entries]
        except (IndexError, KeyError, TypeError, json.JSONDecodeError):
            raise InputError(not_ours % "no header line, or a line that is not an entry") from None
        if not isinstance(old, dict) or not {"scale", "metrics", "kernels", "methods"} <= set(old):
            raise InputError(not_ours % "its header lacks scale, metrics, kernels or methods")
        for key in ("scale", "metrics", "kernels"):
            if old.get(key) != header[key]:
                raise InputError(f"--resume: {self.path} was made with {key} {old.get(key)!r}, this run has "
                                 f"{header[key]!r}; start a new --log")
        for name, ident in header["methods"].items():
            if name in old["methods"] and old["methods"][name] != ident:
                raise InputError(f"--resume: method {name!r} in {self.path} ran with other weights or settings "
                                 f"({old['methods'][name]} vs {ident}); start a new --log")
        self.methods = {**old["methods"], **header["methods"]}
        if tail or self.methods != old["methods"]:
            if tail:
                print(f"note: {self.path}: dropped an incomplete last line (the entry in flight when it stopped)")
            lines[0] = json.dumps({"header": {**old, "methods": self.methods}})
            write_text(self.path, "\n".join(lines) + "\n")
        self.done = dict(zip(keys, entries, strict=True))

    def get(self, method: str, dataset: str, image: str, kernel: str, hr_digest: str) -> dict | None:
        e = self.done.get((method, dataset, image, kernel))
        if e is not None and e["hr"] != hr_digest:
            raise InputError(f"--resume: image {image!r} of dataset {dataset!r} differs from the one in "
                             f"{self.path}; start a new --log")
        return e

    def add(self, entry: dict) -> None:
        self._f.write(json.dumps(entry) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


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
        if met.name in ("psnr", "ssim"):  # fidelity on the Y channel, the border cropped
            v = met.fn(sr, hr, crop_border=scale)
        else:
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
    mets = [get_metric(m) for m in metrics]
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


def _record(key: tuple[str, str, str], vals: dict[str, list]) -> dict:
    """One (method, dataset, kernel) record: each metric's mean over its finite values, and in ``n`` how many
    that is. A NaN/inf value is never dropped silently: a warning names its image."""
    mname, dname, klabel = key
    images = vals.pop("_images")
    rec = {"method": mname, "dataset": dname, "kernel": klabel, "images": len(images), "n": {}}
    for k, v in vals.items():
        arr = np.asarray(v, dtype=np.float64)
        ok = np.isfinite(arr)
        rec[k] = float(arr[ok].mean()) if ok.any() else float("nan")
        rec["n"][k] = int(ok.sum())
        for j in np.flatnonzero(~ok):
            warnings.warn(f"{k} of {mname} on {dname}/{images[j]} ({klabel}) is {arr[j]}: left out of the mean, "
                          f"which is over {int(ok.sum())} of {len(images)} images", RuntimeWarning, stacklevel=3)
    return rec


def summarize(records: list[dict], metrics: Sequence[str]) -> list[dict]:
    """Mean over kernels per (method, dataset): the paper's Gaussian8 figure (and ``kernel_psnr`` where
    the method estimates kernels)."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["method"], r["dataset"]), []).append(r)
    out = []
    for (m, d), rs in groups.items():
        keys = list(metrics) + (["kernel_psnr"] if all("kernel_psnr" in r for r in rs) else [])
        row = {"method": m, "dataset": d, "kernel": "mean", "kernels": len(rs),
               **{k: float(np.mean([r[k] for r in rs])) for k in keys}}
        if all("n" in r for r in rs):  # records read from older cards have no counts
            row["images"] = sum(r["images"] for r in rs)
            row["n"] = {k: sum(r["n"][k] for r in rs) for k in keys}
        out.append(row)
    return out


def _short(r: dict, k: str) -> str:
    """`` (n/N)`` when the mean of ``k`` in record ``r`` is over fewer values than it has images."""
    n, total = r.get("n", {}).get(k), r.get("images")
    return f" ({n}/{total})" if n is not None and total is not None and n < total else ""


def to_markdown(records: list[dict], metrics: Sequence[str], by_kernel: bool = False) -> str:
    """Methods as rows, datasets as columns (the paper's Table 2 layout); cells ``psnr/ssim``.

    ``by_kernel=True``: one column per (dataset, kernel) instead of the mean over kernels.
    """
    rows = records if by_kernel else summarize(records, metrics)
    cols = []
    for r in rows:
        c = (r["dataset"], r["kernel"]) if by_kernel else (r["dataset"],)
        if c not in cols:
            cols.append(c)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], (r["dataset"], r["kernel"]) if by_kernel else (r["dataset"],)): r for r in rows}
    fmt = {"psnr": "{:.2f}", "ssim": "{:.4f}", "niqe": "{:.3f}"}
    head = "| method | " + " | ".join(" ".join(c) for c in cols) + " |"
    lines = [f"metrics: {' / '.join(metrics)}", "", head, "|" + "---|" * (len(cols) + 1)]
    for m in methods:
        vals = []
        for c in cols:
            r = cell.get((m, c))
            vals.append("-" if r is None else " / ".join(fmt.get(k, "{:.4f}").format(r[k]) + _short(r, k)
                                                        for k in metrics))
        lines.append(f"| {m} | " + " | ".join(vals) + " |")
    if any(_short(r, k) for r in rows for k in metrics):
        lines += ["", "(n/N): the mean is over n of N values; the others were NaN (each named in a warning)"]
    kmethods = [m for m in methods if any("kernel_psnr" in r for r in rows if r["method"] == m)]
    if kmethods:
        lines += ["", "kernel PSNR (dB) of the estimated kernels", "", head, "|" + "---|" * (len(cols) + 1)]
        for m in kmethods:
            vals = [f"{cell[(m, c)]['kernel_psnr']:.2f}" if "kernel_psnr" in cell.get((m, c), {}) else "-"
                    for c in cols]
            lines.append(f"| {m} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# Table 6: parameters, MACs and latency at a 64x64 LR input
# ------------------------------------------------------------------------------------------------


def _cost_models() -> dict[str, tuple[list[torch.nn.Module], Callable]]:
    """name -> (modules whose parameters count, ``fn(lr)`` running the method once), random weights."""
    from .agents.kenet import KENet
    from .agents.networks import Actor
    from .renderers import build_renderer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        actor, amnet, amnet_l, dan = Actor(), build_renderer("amnet"), build_renderer("amnet_l"), build_renderer("dan")
        kenet = KENet(kernel_size=amnet.codec.size)
    for m in (actor, amnet, amnet_l, dan, kenet):
        m.eval()

    def rl(renderer):
        return lambda lr: renderer(lr, renderer.codec.action_to_code(actor(lr)))

    return {"AMNet-RL": ([actor, amnet], rl(amnet)), "AMNet_L-RL": ([actor, amnet_l], rl(amnet_l)),
            "DAN (4 loops)": ([dan], dan.super_resolve),
            "KENet + AMNet": ([kenet, amnet], lambda lr: amnet(lr, amnet.codec.encode(kenet(lr))))}


@torch.no_grad()
def cost_table(size: int = 64, repeats: int = 5, device: str | torch.device = "cpu") -> list[dict]:
    """Parameters, MACs (``torch.utils.flop_counter`` / 2) and median latency per 1x3xsize x size image."""
    from torch.utils.flop_counter import FlopCounterMode

    device = torch.device(device)
    rows = []
    for name, (mods, fn) in _cost_models().items():
        for m in mods:
            m.to(device)
        lr = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        with FlopCounterMode(display=False) as fc:
            fn(lr)
        fn(lr)  # warm-up
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn(lr)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        rows.append({"method": name, "params": int(sum(p.numel() for m in mods for p in m.parameters())),
                     "macs_G": fc.get_total_flops() / 2 / 1e9, "latency_s": float(np.median(times)),
                     "device": str(device)})
    base = rows[0]
    for r in rows:
        r["macs_vs_amnet_rl"] = r["macs_G"] / base["macs_G"]
        r["latency_vs_amnet_rl"] = r["latency_s"] / base["latency_s"]
    return rows


def run_cli(args) -> int:
    from .utils import resolve_device

    t0 = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cost:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        rows = [r for d in devices for r in cost_table(repeats=args.cost_repeats, device=d)]
        doc = {"command": args.command_line, "threads": torch.get_num_threads(), "input": "1x3x64x64", "rows": rows}
        lines = ["| method | params | MACs (G) | latency (s) | device | MACs / AMNet-RL | latency / AMNet-RL |",
                 "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['params']:,} | {r['macs_G']:.1f} | {r['latency_s']:.3f} | {r['device']} | "
                  f"{r['macs_vs_amnet_rl']:.1f}x | {r['latency_vs_amnet_rl']:.1f}x |" for r in rows]
        if args.json:
            write_text(args.json, json.dumps(doc, indent=2) + "\n")
        if args.markdown:
            write_text(args.markdown, "\n".join(lines) + "\n")
        print("\n".join(lines))
        return 0
    device = resolve_device(args.device)
    for target in (args.json, args.markdown, args.log):  # fail now, not after the evaluation
        if target:
            check_writable(Path(target).expanduser().parent)
    if args.figures:
        check_writable(args.figures, "--figures folder")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    for m in metrics:
        get_metric(m)  # fail before the long loop
    datasets = load_datasets(args.data, args.scale)
    kernels = parse_kernels(args.kernels, args.scale)
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    for name in names:
        if name not in METHODS:
            raise InputError(f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    methods = [make_method(name, scale=args.scale, device=device, renderer=args.renderer, dan=args.dan,
                           gan_renderer=args.gan_renderer, actor=args.actor, gan_actor=args.gan_actor,
                           kenet=args.kenet, fixed_sigma=args.fixed_sigma) for name in names]
    panels = FigurePanels(args.figures, crop=args.figure_crop) if args.figures else None
    if args.resume and not args.log:
        raise InputError("--resume continues a --log; name it")
    seconds: dict = {}
    records = evaluate(datasets, kernels, methods, metrics, args.scale, device, args.max_images,
                       progress=not args.no_progress, on_result=panels, log=args.log, resume=args.resume,
                       seconds=seconds)
    result = {"command": args.command_line, "kernels": args.kernels, "scale": args.scale,
              "renderer": str(args.renderer), "device": str(device),
              "wall_s": round(time.perf_counter() - t0, 1), "method_s": seconds, "records": records,
              "summary": summarize(records, metrics)}
    if args.log:
        result["log"] = str(args.log)
    md = to_markdown(records, metrics, by_kernel=args.by_kernel)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_text(args.json, json.dumps(result, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        write_text(args.markdown, md)
    if panels is not None:
        result["figures"] = [str(p) for p in panels.write()]
    if args.card_key:
        cards = sorted({p for m in methods for p in m.checkpoints})
        if not cards:
            raise InputError("--card-key: none of the methods evaluated has a checkpoint whose card could hold it")
        for path in cards:
            _update_card(path, args.card_key, result)
    print(md)
    return 0


class FigurePanels:
    """``on_result`` for :func:`evaluate`: keeps the centre crop of each dataset's first image from every
    method, and writes one PNG per (dataset, kernel): LR (nearest-upscaled), the methods, HR."""

    def __init__(self, folder: str | Path, crop: int = 128):
        if crop < 16:
            raise InputError(f"figure crop must be >= 16 pixels, got {crop}")
        self.folder, self.crop = Path(folder), crop
        self.first: dict[str, str] = {}
        self.tiles: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}
        self.hr: dict[tuple[str, str], tuple[str, np.ndarray]] = {}

    def _crop(self, x: torch.Tensor, scale: int = 1) -> np.ndarray:
        from .utils import to_uint8

        h, w = x.shape[-2:]
        c = min(self.crop // scale, h, w)
        t, lft = (h - c) // 2, (w - c) // 2
        img = to_uint8(x[..., t:t + c, lft:lft + c].float().cpu())[0]
        if scale > 1:
            img = np.repeat(np.repeat(img, scale, 0), scale, 1)
        return img

    def __call__(self, method, dataset, image, kernel, lr, sr, hr):
        if self.first.setdefault(dataset, image) != image:
            return
        tiles = self.tiles.setdefault((dataset, kernel), [])
        if not tiles:
            tiles.append(("LR", self._crop(lr, hr.shape[-1] // lr.shape[-1])))
            self.hr[(dataset, kernel)] = ("HR", self._crop(hr))
        tiles.append((method, self._crop(sr)))

    def write(self) -> list[Path]:
        import cv2

        from .fileio import write_image

        self.folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for (dataset, kernel), tiles in self.tiles.items():
            tiles = [*tiles, self.hr[(dataset, kernel)]]
            side = max(t.shape[0] for _, t in tiles)
            row = []
            for name, t in tiles:
                t = cv2.resize(t, (side, side), interpolation=cv2.INTER_NEAREST) if t.shape[0] != side else t
                label = np.full((22, side, 3), 255, np.uint8)
                cv2.putText(label, name, (3, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
                row += [np.vstack([label, t]), np.full((side + 22, 4, 3), 255, np.uint8)]
            stem = f"{dataset}_{self.first[dataset]}_{kernel}"
            safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in stem)
            path = self.folder / f"{safe}.png"
            write_image(path, np.hstack(row[:-1]))
            paths.append(path)
        return paths


def _update_card(path: Path, key: str, result: dict) -> None:
    """Store ``result`` (summary, records, command) in the model card next to ``path`` under evaluation[key]."""
    card_path = Path(path).with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    keep = ("command", "kernels", "device", "wall_s", "method_s", "summary", "records")
    card.setdefault("evaluation", {})[key] = {k: result[k] for k in keep if k in result}
    write_text(card_path, json.dumps(card, indent=2) + "\n")


def add_arguments(p) -> None:
    p.add_argument("--data", nargs="+", default=["builtin"], help="HR image folders, or 'builtin'")
    p.add_argument("--kernels", default="gaussian8", help="'gaussian8' or 'sigma:0.2,1.3,2.6'")
    p.add_argument("--methods", default="bicubic,gt", help=f"comma-separated; registered: {', '.join(sorted(METHODS))}")
    p.add_argument("--renderer", default="amnet_x4", help="renderer for 'gt' (shipped name or checkpoint path)")
    p.add_argument("--dan", default="dan_x4", help="DAN checkpoint for 'dan' (shipped name or path)")
    p.add_argument("--gan-renderer", default="amgan_x4", help="renderer for 'amgan-gt' and 'amgan-rl'")
    p.add_argument("--actor", default="actor_psnr_x4", help="actor for 'amnet-rl' (shipped name or path)")
    p.add_argument("--gan-actor", default="actor_niqe_x4", help="actor for 'amgan-rl' (shipped name or path)")
    p.add_argument("--kenet", default="kenet_x4", help="KENet for 'kenet' (shipped name or path)")
    p.add_argument("--fixed-sigma", type=float, default=2.2,
                   help="'fixed': the width of the one isotropic kernel used for every image")
    p.add_argument("--figures", default=None, help="folder for visual comparison panels (one per dataset and kernel; "
                   "with --resume only of the images computed in this run)")
    p.add_argument("--log", default=None, help="per-image results as JSON lines, written as they are computed")
    p.add_argument("--resume", action="store_true",
                   help="continue the --log of an evaluation that stopped: its entries are not recomputed "
                        "(a missing log starts one); refused if scale, metrics, kernels or a method's weights differ")
    p.add_argument("--figure-crop", type=int, default=128, help="HR crop side of the panels")
    p.add_argument("--metrics", default="psnr,ssim", help="comma-separated metric names")
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4), help="upscaling factor")
    p.add_argument("--max-images", type=int, default=None, help="first N images of each dataset")
    p.add_argument("--by-kernel", action="store_true", help="markdown: one column per kernel")
    p.add_argument("--json", default=None, help="write records here")
    p.add_argument("--markdown", default=None, help="write the table here")
    p.add_argument("--card-key", default=None,
                   help="also store the results in the model card (.json) of each evaluated method's checkpoint "
                        "(gt: --renderer, kenet: --kenet, amnet-rl: --actor, ...) under evaluation.<KEY>")
    p.add_argument("--cost", action="store_true",
                   help="Table 6 instead: parameters, MACs and latency at 64x64 (random weights; CPU, and GPU if any)")
    p.add_argument("--cost-repeats", type=int, default=5, help="--cost: timed runs per method (median)")
    p.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'auto'")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
