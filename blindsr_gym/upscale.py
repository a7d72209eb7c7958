"""Upscale your own low-resolution images with the shipped models (``blindsr-gym upscale``).

    blindsr-gym upscale photo.png more_photos/ --out sr/                 # blind: actor_psnr_x4 + amnet_robust2_x4
    blindsr-gym upscale photo.png --out sr/ --method dan                 # blind: DAN
    blindsr-gym upscale photo.png --out sr/ --sigma 2.0                  # known blur: amnet_robust2_x4, sigma 2.0

Inputs are image files or folders of them (png, jpg, bmp, tif, webp; grayscale is replicated, alpha
dropped, 16-bit scaled to 8-bit). Each ``NAME.ext`` becomes ``OUT/NAME_x4.png``. Existing outputs
are never overwritten unless ``--overwrite`` is given, and two inputs that would write the same
output are an error before anything runs.

Methods (``--method``):

* ``amnet-rl`` (default): the shipped ``actor_psnr_x4`` (or ``--actor``) reads the kernel width from the
  whole image and AMNet (``--renderer``, default ``amnet_robust2_x4``) renders with it; the best blind pipeline
  shipped (docs/results.md, Table 2);
* ``amnet-rl-ens``: ``amnet-rl`` with the actor's width averaged over the 8 flips and rotations of the image
  (a test-time self-ensemble: 8 actor passes, one render);
* ``kenet``: KENet estimates the blur kernel, AMNet renders with its code;
* ``dan``: DAN, which estimates its own kernel code;
* ``amgan-rl``: an actor choosing the code of AMGAN (``--gan-renderer``, default ``amgan2_x4``); the actor
  is ``--actor``, else the one trained against that AMGAN (``actor_niqe4_x4`` for ``amgan2_x4``,
  ``actor_niqe3_x4`` for ``amgan_x4`` and any other);
* ``bicubic``: MATLAB bicubic interpolation;
* ``--sigma S``: non-blind, AMNet (or ``--renderer``) with an isotropic Gaussian of width S (HR pixels).

The models expect LR images made like their training data (an isotropic Gaussian blur, then x4
downsampling, no noise, no compression); JPEG artefacts and sensor noise are outside what they
learnt. Images are processed whole, one at a time: AMNet's modulation layer normalises each feature
map by its statistics over the whole image, so rendering in tiles would change the result. The
printed (or ``--json``) report gives, for the blind methods that estimate a kernel, the width of the
isotropic Gaussian with the estimate's second moment.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from blindsr_gym.errors import InputError

from .data import IMAGE_EXTENSIONS, ImageReadError, read_image
from .fileio import check_outputs_distinct, check_writable, write_image
from .utils import NonFiniteOutputError, check_finite

__all__ = ["collect_inputs", "make_upscaler", "upscale_files", "UPSCALE_METHODS", "add_arguments", "run_cli"]

UPSCALE_METHODS = ("amnet-rl", "amnet-rl-ens", "kenet", "dan", "amgan-rl", "bicubic")
DEFAULT_METHOD = "amnet-rl"
#: amnet2_x4 (amnet_x4's run at 27,250 iterations) fine-tuned to expect over-estimated widths: on Set14 better
#: than amnet2_x4 with every estimator and with the true kernel (docs/results.md, Table 2)
DEFAULT_RENDERER = "amnet_robust2_x4"
#: AMGAN tuned from amnet2_x4: with the NIQE actor, a lower NIQE than amgan_x4 on Set14 (docs/results.md, Table 3)
DEFAULT_GAN_RENDERER = "amgan2_x4"
#: amgan-rl's actor for a shipped GAN renderer: the Set14-best NIQE actor trained against it; any other
#: renderer gets ``agents.DEFAULT_NIQE_ACTOR`` (trained against amgan_x4, the envs' AMGAN)
GAN_ACTORS = {"amgan2_x4": "actor_niqe4_x4"}


def collect_inputs(specs: Sequence[str | Path]) -> list[Path]:
    """Image files named directly or found (non-recursively, sorted) in the folders named."""
    files: list[Path] = []
    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_dir():
            found = sorted(q for q in p.iterdir()
                           if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS and not q.name.startswith("."))
            if not found:
                raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {p}")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such image or folder: {p}")
    if not files:
        raise FileNotFoundError("no input images given")
    return files


def make_upscaler(method: str | None = None, sigma: float | None = None, renderer: str = DEFAULT_RENDERER,
                  gan_renderer: str = DEFAULT_GAN_RENDERER, actor: str | None = None, kenet: str = "kenet_x4",
                  dan: str = "dan_x4", device: str | torch.device = "cpu", bicubic_scale: int = 4):
    """``(name, scale, fn)`` with ``fn(lr [1, 3, h, w]) -> (sr, estimated_kernel or None)``. ``method``
    defaults to ``amnet-rl``; ``sigma`` (a known blur) replaces the method and renders with ``renderer``."""
    from .agents import DEFAULT_NIQE_ACTOR, DEFAULT_PSNR_ACTOR
    from .evaluate import make_method
    from .kernels import isotropic_gaussian
    from .renderers import load_renderer

    if sigma is not None:
        if method is not None:
            raise InputError(f"--sigma renders with the known kernel (non-blind); it cannot be combined with "
                             f"--method {method}")
        sigma = float(sigma)
        if not (math.isfinite(sigma) and sigma > 0):
            raise InputError(f"--sigma must be a positive number, got {sigma}")
        model = load_renderer(renderer, device=device)
        m = make_method("gt", scale=model.scale, device=device, renderer=model)
        k = isotropic_gaussian(sigma, model.codec.size).float()
        return f"{model.arch} sigma={sigma:g}", model.scale, lambda lr: (m.fn(lr, k), None)
    method = DEFAULT_METHOD if method is None else method
    if method not in UPSCALE_METHODS:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(UPSCALE_METHODS)} (or give --sigma)")
    if actor is not None and method not in ("amnet-rl", "amnet-rl-ens", "amgan-rl"):
        raise InputError(f"--actor is for the amnet-rl, amnet-rl-ens and amgan-rl methods, not {method!r}")
    if method == "bicubic":
        model, kw = None, {}
    elif method == "dan":
        model = load_renderer(dan, device=device, arch="dan")
        kw = {"dan": model}
    elif method == "amgan-rl":
        model = load_renderer(gan_renderer, device=device)
        kw = {"gan_renderer": model, "gan_actor": actor or GAN_ACTORS.get(str(gan_renderer), DEFAULT_NIQE_ACTOR)}
    else:
        model = load_renderer(renderer, device=device)
        kw = {"renderer": model, "kenet": kenet, "actor": actor or DEFAULT_PSNR_ACTOR}
    scale = bicubic_scale if model is None else model.scale
    m = make_method(method, scale=scale, device=device, **kw)

    def fn(lr):
        out = m.fn(lr, None)  # blind methods never look at the kernel argument
        return out if isinstance(out, tuple) else (out, None)

    return method, scale, fn


def _outputs(files: Sequence[Path], out: Path, scale: int) -> list[Path]:
    outs = [out / f"{f.stem}_x{scale}.png" for f in files]
    seen: dict[Path, Path] = {}
    for f, o in zip(files, outs, strict=True):
        r = o.resolve()
        if r in seen:
            raise InputError(f"{seen[r]} and {f} would both be written to {o}; "
                             "upscale them into different --out folders")
        seen[r] = f
    check_outputs_distinct(files, outs)
    return outs


class UpscaleError(RuntimeError):
    """Some inputs could not be upscaled; ``reports`` holds every image's report, failures included."""

    def __init__(self, message: str, reports: list[dict]):
        super().__init__(message)
        self.reports = reports


@torch.no_grad()
def upscale_files(inputs: Sequence[str | Path], out: str | Path, method: str | None = None, sigma: float | None = None,
                  overwrite: bool = False, skip_existing: bool = False, progress: bool = True,
                  device: str | torch.device = "cpu", **models) -> list[dict]:
    """Upscale every input image into ``out``; returns one report per image (paths, sizes, seconds and,
    for kernel-estimating methods, the estimated width ``sigma_estimate``).

    Before any image is processed: an output path that is any input's path is refused (``overwrite`` never
    extends to inputs), existing outputs are refused unless ``overwrite`` (replace them) or
    ``skip_existing`` (keep them and skip their inputs), and ``out`` must be writable. Each output is
    written to a temporary file renamed into place. An input that cannot be read, or whose SR is not
    finite, is reported (``"error"``) and the others go on; :class:`UpscaleError` is raised at the end
    when any failed.
    """
    from .kernels import isotropic_sigma
    from .utils import to_tensor, to_uint8

    if overwrite and skip_existing:
        raise InputError("--overwrite replaces existing outputs and --skip-existing keeps them: choose one")
    files = collect_inputs(inputs)
    out = Path(out).expanduser()
    name, scale, fn = make_upscaler(method, sigma=sigma, device=device, **models)  # the scale names the outputs
    outs = _outputs(files, out, scale)
    exist = {o for o in outs if o.exists()}
    if exist and not (overwrite or skip_existing):
        raise FileExistsError(f"{len(exist)} output(s) exist already, e.g. {min(exist)}; pass --skip-existing to "
                              "keep them (and upscale only the rest) or --overwrite to replace them")
    skipped = exist if skip_existing else set()
    todo = [(f, o) for f, o in zip(files, outs, strict=True) if o not in skipped]
    check_writable(out)
    reports = [{"input": str(f), "output": str(o), "skipped": "output exists"}
               for f, o in zip(files, outs, strict=True) if o in skipped]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=f"upscale ({name})", unit="img")
    try:
        for f, o in todo:
            t0 = time.perf_counter()
            rep = {"input": str(f), "output": str(o), "method": name}
            reports.append(rep)
            try:
                img = read_image(f)
                sr, k_hat = fn(to_tensor(img, device=device))
                check_finite(sr, f"the SR image of {f}")
            except (ImageReadError, NonFiniteOutputError) as e:  # reported; the other images go on
                rep["error"] = str(e)
            else:
                write_image(o, to_uint8(sr)[0])
                rep.update(lr_size=list(img.shape[:2]), sr_size=[int(sr.shape[-2]), int(sr.shape[-1])],
                           seconds=round(time.perf_counter() - t0, 3))
                if k_hat is not None:
                    k = k_hat.float().reshape(1, *k_hat.shape[-2:])
                    rep["sigma_estimate"] = round(float(isotropic_sigma(k)[0]), 3)
            finally:
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    failed = [r for r in reports if "error" in r]
    if failed:
        raise UpscaleError(f"{len(failed)} of {len(todo)} image(s) failed, e.g. {failed[0]['error']}", reports)
    return reports


def add_arguments(p) -> None:
    p.add_argument("inputs", nargs="+", help="LR image files and/or folders of them")
    p.add_argument("--out", required=True, help="output folder (created); NAME.ext -> OUT/NAME_x4.png")
    p.add_argument("--method", default=None, help=f"one of {', '.join(UPSCALE_METHODS)} (default {DEFAULT_METHOD})")
    p.add_argument("--sigma", type=float, default=None,
                   help="known blur: render with an isotropic Gaussian of this width (HR pixels); non-blind")
    p.add_argument("--renderer", default=DEFAULT_RENDERER, help="renderer for kenet, amnet-rl and --sigma")
    p.add_argument("--gan-renderer", default=DEFAULT_GAN_RENDERER, help="renderer for amgan-rl")
    p.add_argument("--actor", default=None, help="actor for amnet-rl / amgan-rl (shipped name or .safetensors)")
    p.add_argument("--kenet", default="kenet_x4", help="KENet for kenet (shipped name or .safetensors)")
    p.add_argument("--dan", default="dan_x4", help="DAN for dan (shipped name or .safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist (never an input)")
    p.add_argument("--skip-existing", action="store_true",
                   help="keep outputs that exist and upscale only the other inputs (to finish an interrupted run)")
    p.add_argument("--json", action="store_true", help="print the per-image report as JSON")
    p.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'auto'")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_cli(args) -> int:
    from .utils import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    rc = 0
    try:
        reports = upscale_files(args.inputs, args.out, method=args.method, sigma=args.sigma,
                                overwrite=args.overwrite, skip_existing=args.skip_existing,
                                progress=not args.no_progress, device=resolve_device(args.device),
                                renderer=args.renderer, gan_renderer=args.gan_renderer, actor=args.actor,
                                kenet=args.kenet, dan=args.dan)
    except UpscaleError as e:  # some images failed: report every image, then exit 1
        reports, rc = e.reports, 1
    if args.json:
        print(json.dumps({"command": args.command_line, "images": reports}, indent=1))
        return rc
    for r in reports:
        if "error" in r:
            print(f"{r['input']}: FAILED: {r['error']}", file=sys.stderr)
        elif "skipped" in r:
            print(f"{r['input']}: skipped ({r['output']} exists)")
        else:
            est = f", estimated sigma {r['sigma_estimate']:.2f}" if "sigma_estimate" in r else ""
            print(f"{r['input']} ({r['lr_size'][1]}x{r['lr_size'][0]}) -> {r['output']} "
                  f"({r['sr_size'][1]}x{r['sr_size'][0]}, {r['method']}{est}, {r['seconds']:.2f} s)")
    done = [r for r in reports if "seconds" in r]
    failed = sum("error" in r for r in reports)
    skipped = sum("skipped" in r for r in reports)
    print(f"{len(done)} image(s) upscaled in {sum(r['seconds'] for r in done):.1f} s"
          + (f", {skipped} skipped" if skipped else "") + (f", {failed} FAILED" if failed else ""))
    return rc

