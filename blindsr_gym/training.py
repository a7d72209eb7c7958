"""What every trainer shares when it stops and resumes: the stored configuration, compared whole, and
the resume state, read with a clear error when it is damaged.

A resumed run must continue the run it resumes. Each trainer stores its whole configuration in its
resume state and, on ``--resume``, :func:`check_resume_config` compares it with the new one and names
every difference, except the keys of an explicit allow-list (a longer run, another device, paths that
differ between machines). Anything else (another renderer, metric, batch, crop size, seed) is refused:
a replay buffer or an optimiser state from one setting would silently train another.

It also holds what the trainers share beyond resume, so that no trainer imports another: the precision
choice (:func:`resolve_amp`), the hardware named in model cards (:func:`hardware_string`) and the
exponential learning-rate decay (:func:`decayed`).
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from pathlib import Path

import torch

from blindsr_gym.errors import InputError

__all__ = ["ResumeError", "config_differences", "check_resume_config", "load_state"]

#: Keys any trainer's resume may change: where things are and how often it reports; not what it learns.
#: (A data folder may sit elsewhere on another machine; its images must be the same.)
RESUME_ALLOWED = ("out", "logdir", "device", "threads", "data", "val_data", "ckpt_every", "val_every",
                  "eval_every", "log_every")


class ResumeError(InputError):
    """A resume state that is damaged, or whose run differs from the one asked for."""


def config_differences(saved: dict, new: dict, allowed: Iterable[str] = (), prefix: str = "") -> list[str]:
    """``"key: saved -> new"`` for each differing key (dotted for nested dicts), except those in ``allowed``
    (dotted keys allow a nested key alone)."""
    allowed = set(allowed)
    out = []
    for key in sorted(set(saved) | set(new)):
        name = prefix + str(key)
        if name in allowed:
            continue
        a, b = saved.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, allowed, name + ".")
        elif _norm(a) != _norm(b):
            out.append(f"{name}: {a!r} -> {b!r}")
    return out


def _norm(v):
    return list(v) if isinstance(v, tuple) else v  # a tuple stored in a state comes back a list


def check_resume_config(saved: dict, new: dict, allowed: Iterable[str], path: str | Path, flag: str = "--out") -> None:
    """Raise :class:`ResumeError` naming every difference between the stored and the new configuration
    outside ``allowed`` (plus :data:`RESUME_ALLOWED`)."""
    diffs = config_differences(saved, new, (*RESUME_ALLOWED, *allowed))
    if diffs:
        raise ResumeError(f"--resume: {path} is a run with another setting ({'; '.join(diffs)}); resume it with "
                          f"its own settings, or start a new {flag} to change them (a resume may change only "
                          f"{', '.join(sorted({*allowed, *RESUME_ALLOWED}))})")


def load_state(path: str | Path) -> dict:
    """A trainer's resume state (``torch.save`` of tensors and plain data), or :class:`ResumeError` naming the
    file when it is missing, truncated or not one."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated zip raises RuntimeError, a foreign pickle UnpicklingError, ...
        raise ResumeError(f"--resume: {path} is damaged or not a resume state ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}); resume from an intact copy or start "
                          "a new run") from None
    if not isinstance(state, dict) or "config" not in state:
        raise ResumeError(f"--resume: {path} is not a blindsr-gym resume state (no stored configuration)")
    return state


def resolve_amp(amp: str, device: torch.device) -> str:
    """``"auto"`` -> ``"bf16"`` where the hardware runs it fast (CUDA with bf16, CPUs with AMX/AVX-512 bf16),
    else ``"off"``; ``"bf16"`` and ``"off"`` pass through."""
    if amp not in ("auto", "bf16", "off"):
        raise InputError(f"amp must be 'auto', 'bf16' or 'off', got {amp!r}")
    if amp != "auto":
        return amp
    fast = (device.type == "cuda" and torch.cuda.is_bf16_supported()) or \
        (device.type == "cpu" and torch.backends.mkldnn.is_available() and _cpu_has_bf16())
    return "bf16" if fast else "off"


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def hardware_string(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} (CPU), {torch.get_num_threads()} threads"


def decayed(lr0: float, frac_to: float, it: int, total: int) -> float:
    """Exponential decay from ``lr0`` at iteration 0 to ``lr0 * frac_to`` at ``total``."""
    return lr0 * frac_to ** (it / max(total, 1))
