"""What every trainer shares when it stops and resumes: the stored configuration, compared whole, and
the resume state, read with a clear error when it is damaged.

A resumed run must continue the run it resumes. Each trainer stores its whole configuration in its
resume state and, on ``--resume``, :func:`check_resume_config` compares it with the new one and names
every difference, except the keys of an explicit allow-list (a longer run, another device, paths that
differ between machines). Anything else (another renderer, metric, batch, crop size, seed) is refused:
a replay buffer or an optimiser state from one setting would silently train another.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

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
