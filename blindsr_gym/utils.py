"""Small helpers shared across the package: image conversions and device resolution."""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
from pathlib import Path

import numpy as np
import torch

from blindsr_gym.errors import InputError

__all__ = ["NonFiniteOutputError", "check_finite", "cuda_graphed", "to_device", "to_tensor", "to_uint8", "centre_crop",
           "resolve_device", "tune_cpu_malloc", "file_sha256", "read_checkpoint", "write_checkpoint"]


class NonFiniteOutputError(RuntimeError):
    """A model produced NaN or inf: an error, never an image (broken weights or input)."""


def check_finite(x: torch.Tensor, what: str) -> torch.Tensor:
    """``x`` unchanged, or :class:`NonFiniteOutputError` naming ``what`` when it holds NaN or inf."""
    if not bool(torch.isfinite(x).all()):
        raise NonFiniteOutputError(f"{what} is not finite (NaN or inf): the model's weights or its input are "
                                   "broken, so no image was made from it")
    return x


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``t`` on ``device``. From the CPU to a GPU the copy goes through pinned memory and does not wait:
    a plain copy from pageable memory synchronises the whole stream, so every one of them would stall the
    host until the GPU has finished all the work queued before it. (The pinned staging block is not reused
    before the copy is done: PyTorch's host allocator records the copy's stream.)"""
    device = torch.device(device)
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def cuda_graphed(fn, *examples: torch.Tensor, warmup: int = 3):
    """``fn`` captured once into a CUDA graph for inputs shaped like ``examples``: a call copies its inputs into
    the graph's, replays every kernel of ``fn`` with one launch, and returns the graph's output tensor
    (overwritten by the next call: clone what you keep). A network of many small kernels is bound by their
    launches on the host; replayed from a graph they cost it one. ``fn`` must not synchronise with the host."""
    static = [x.clone() for x in examples]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as capture requires
        for _ in range(warmup):
            fn(*static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn(*static)

    def run(*xs: torch.Tensor) -> torch.Tensor:
        for s, x in zip(static, xs, strict=True):
            s.copy_(x)
        graph.replay()
        return out

    return run


def to_tensor(img, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 RGB image(s), ``[H, W, 3]`` or ``[N, H, W, 3]``, to float32 NCHW in [0, 1]."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise InputError(f"expected [H, W, 3] or [N, H, W, 3] RGB, got shape {arr.shape}")
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div_(255)
    return t.to(device) if device is not None else t


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float NCHW in [0, 1] to uint8 NHWC (rounded half up, clamped)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise InputError("expected a float NCHW tensor")
    from .degradation import to_levels

    y = to_levels(x.detach()).to(torch.uint8)
    return y.permute(0, 2, 3, 1).cpu().numpy()


def centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size`` x ``size`` window of ``x [..., H, W]`` (a side shorter than ``size`` is kept whole)."""
    h, w = x.shape[-2:]
    t, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return x[..., t:t + size, left:left + size]


def resolve_device(device: torch.device | str | None = "auto") -> torch.device:
    """``"auto"``/None: CUDA when available, else CPU; otherwise the named device, checked.

    A CPU device also applies :func:`tune_cpu_malloc` (once per process)."""
    if device is None or device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise InputError(f"invalid device {device!r}: {e}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise InputError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    if dev.type == "cpu":
        tune_cpu_malloc()
    return dev


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_malloc_state: str | None = None


def tune_cpu_malloc(mmap_mib: int = 32, trim_mib: int = 128) -> str:
    """Keep freed tensor memory in the process for reuse instead of handing it back to the kernel, so
    that CPU tensors of a few MiB do not arrive as fresh zero-filled pages at every allocation.

    PyTorch allocates CPU tensors with ``malloc``. glibc serves blocks above its mmap threshold with fresh
    pages and returns a freed heap top above its trim threshold to the kernel; the thresholds adapt to the
    sizes seen, and the feature maps of a renderer (1 to 16 MiB each, allocated and freed dozens of times
    per forward) keep falling on the wrong side of them, so every forward pays page faults for most of
    its memory traffic. Fixed thresholds (blocks up to ``mmap_mib`` from the heap; at most ``trim_mib`` of
    free heap top kept) stop that. The figures are in ``docs/experiments/2026-11-27_cpu_malloc.md``.

    Applied once per process, by :func:`resolve_device` for a CPU device. It changes nothing (and says
    why, in the returned state) on other C libraries, when ``BLINDSR_MALLOC=default``, or when the
    process was started with glibc's own ``MALLOC_*_`` variables or ``GLIBC_TUNABLES`` (the user's
    choice wins). Returns ``"tuned"`` or the reason it did not.
    """
    global _malloc_state
    if _malloc_state is not None:
        return _malloc_state
    if os.environ.get("BLINDSR_MALLOC", "") == "default":
        _malloc_state = "left to the C library (BLINDSR_MALLOC=default)"
    elif any(k in os.environ for k in _MALLOC_ENV) or "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        _malloc_state = "left to the C library (the environment sets glibc's malloc parameters)"
    elif platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        _malloc_state = "left to the C library (not glibc)"
    else:
        try:
            mallopt = ctypes.CDLL(None).mallopt
            ok = mallopt(_M_MMAP_THRESHOLD, mmap_mib << 20) == 1 and mallopt(_M_TRIM_THRESHOLD, trim_mib << 20) == 1
        except (OSError, AttributeError):
            ok = False
        _malloc_state = "tuned" if ok else "left to the C library (mallopt refused)"
    return _malloc_state


def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes (hex): model cards record it as ``sha256`` and loading checks it."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_checkpoint(path, fmt: str | tuple[str, ...], error: type[Exception], what: str) -> tuple[dict, dict]:
    """``(metadata, tensors)`` of a ``.safetensors`` checkpoint whose metadata ``format`` is ``fmt`` (or one
    of several); anything else raises ``error`` naming the file and ``what`` was expected.

    Corruption is caught, not rendered: when the model card beside the file records the file's
    ``sha256`` (every card the package writes does), the bytes must match it; and every floating-point
    tensor must be finite.
    """
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises several types for a damaged file
        raise error(f"{path}: not a readable .safetensors file ({e})") from None
    if meta.get("format") not in ((fmt,) if isinstance(fmt, str) else fmt):
        raise error(f"{path}: not a blindsr-gym {what} checkpoint (format {meta.get('format')!r})")
    card = path.with_suffix(".json")
    if card.is_file():
        try:
            want = json.loads(card.read_text()).get("sha256")
        except (json.JSONDecodeError, AttributeError):
            raise error(f"{card}: the model card beside {path.name} is not a JSON object") from None
        if want and file_sha256(path) != want:
            raise error(f"{path}: the file's SHA-256 differs from the one its model card {card.name} records: the "
                        f"weights are corrupt or were changed after the card was written")
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise error(f"{path}: corrupt {what} checkpoint: {len(bad)} tensor(s) hold NaN or inf, e.g. {bad[0]!r}")
    return meta, tensors


def write_checkpoint(path, tensors: dict, meta: dict, card: dict) -> Path:
    """Write ``tensors`` with ``meta`` to ``path`` (``.safetensors``) and ``card`` plus the file's
    ``sha256`` to the model card beside it (``.json``), each atomically; the weights first, so a card
    never describes a file that is not there."""
    import json

    from safetensors.torch import save_file

    from .fileio import atomic_path, write_text

    path = Path(path)
    if path.suffix != ".safetensors":
        raise InputError(f"checkpoints are .safetensors files, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    card = {**card, "sha256": file_sha256(path)}
    write_text(path.with_suffix(".json"), json.dumps(card, indent=2, default=str) + "\n")
    return path


def resolve_checkpoint(name_or_path, package: str, shipped: tuple[str, ...], error: type[Exception],
                       what: str) -> Path:
    """A shipped name (``package/weights/<name>.safetensors``) or an existing file path."""
    from importlib import resources

    name = str(name_or_path)
    if name in shipped:
        ref = resources.files(package) / "weights" / f"{name}.safetensors"
        if not ref.is_file():
            raise error(f"{what} {name!r} is not in this installation ({ref} is missing): this version may not ship "
                        f"it yet (docs/results.md, 'Shipped models'), or the installation is incomplete; pass a "
                        f"checkpoint path instead")
        return Path(str(ref))
    path = Path(name).expanduser()
    if not path.is_file():
        raise error(f"{what} checkpoint not found: {name}; shipped {what}s are {', '.join(shipped)}")
    return path


def weights_digest(*modules: torch.nn.Module) -> str:
    """A short SHA-256 of the modules' parameters and buffers (names, shapes, dtypes and values)."""
    h = hashlib.sha256()
    for m in modules:
        for name, t in m.state_dict().items():
            t = t.detach().cpu().contiguous()
            h.update(f"{name}{tuple(t.shape)}{t.dtype};".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
