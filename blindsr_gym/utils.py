"""Small helpers shared across the package: image conversions and device resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

__all__ = ["to_tensor", "to_uint8", "centre_crop", "resolve_device"]


def to_tensor(img, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 RGB image(s), ``[H, W, 3]`` or ``[N, H, W, 3]``, to float32 NCHW in [0, 1]."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected [H, W, 3] or [N, H, W, 3] RGB, got shape {arr.shape}")
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div_(255)
    return t.to(device) if device is not None else t


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float NCHW in [0, 1] to uint8 NHWC (rounded half up, clamped)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError("expected a float NCHW tensor")
    from .degradation import to_levels

    y = to_levels(x.detach()).to(torch.uint8)
    return y.permute(0, 2, 3, 1).cpu().numpy()


def centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size`` x ``size`` window of ``x [..., H, W]`` (a side shorter than ``size`` is kept whole)."""
    h, w = x.shape[-2:]
    t, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return x[..., t:t + size, left:left + size]


def resolve_device(device: torch.device | str | None = "auto") -> torch.device:
    """``"auto"``/None: CUDA when available, else CPU; otherwise the named device, checked."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"invalid device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    return dev


def read_checkpoint(path, fmt: str, error: type[Exception], what: str) -> tuple[dict, dict]:
    """``(metadata, tensors)`` of a ``.safetensors`` checkpoint whose metadata ``format`` is ``fmt``;
    anything else raises ``error`` naming the file and ``what`` was expected."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises several types for a damaged file
        raise error(f"{path}: not a readable .safetensors file ({e})") from None
    if meta.get("format") != fmt:
        raise error(f"{path}: not a blindsr-gym {what} checkpoint (format {meta.get('format')!r})")
    return meta, tensors


def resolve_checkpoint(name_or_path, package: str, shipped: tuple[str, ...], error: type[Exception],
                       what: str) -> Path:
    """A shipped name (``package/weights/<name>.safetensors``) or an existing file path."""
    from importlib import resources

    name = str(name_or_path)
    if name in shipped:
        ref = resources.files(package) / "weights" / f"{name}.safetensors"
        if not ref.is_file():
            raise error(f"{what} {name!r} is not in this installation ({ref} is missing): this version may not ship "
                        f"it yet (README, 'Shipped weights'), or the installation is incomplete; pass a checkpoint "
                        f"path instead")
        return Path(str(ref))
    path = Path(name).expanduser()
    if not path.is_file():
        raise error(f"{what} checkpoint not found: {name}; shipped {what}s are {', '.join(shipped)}")
    return path
