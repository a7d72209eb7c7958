"""Writing files the user sees, safely: every write goes to a temporary file in the same folder that is
renamed into place, so a killed run leaves either the old file or the new one, never a partial one.

Every writer of the package (images, logs, model cards, checkpoints, resume states) goes through
:func:`atomic_path`; nothing opens a user-visible file for writing in place.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from blindsr_gym.errors import InputError

__all__ = ["atomic_path", "write_text", "write_image", "save_torch", "check_writable", "check_outputs_distinct"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an exception it replaces
    ``path`` (an atomic rename on POSIX), otherwise it is removed and ``path`` is untouched."""
    path = Path(path)
    # hidden, unique to the process, and with the file's own suffix (some writers append theirs otherwise)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_image(path: str | Path, rgb: np.ndarray) -> None:
    """Write a uint8 HWC **RGB** image (or HW grayscale) atomically; the format follows the suffix.
    The channel order on disk is the image's own: cv2's BGR convention is applied here, once."""
    import cv2

    path = Path(path)
    img = np.asarray(rgb)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise InputError(f"write_image needs uint8 HxW or HxWx3 RGB, got {img.dtype} {img.shape}")
    if img.ndim == 3:
        img = np.ascontiguousarray(img[..., ::-1])
    ok, buf = cv2.imencode(path.suffix or ".png", img)
    if not ok:
        raise OSError(f"could not encode {path} (unsupported extension {path.suffix!r}?)")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def save_torch(obj, path: str | Path) -> None:
    """``torch.save`` atomically (a resume state is replaced whole or not at all)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def check_writable(folder: str | Path, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and prove it can take a new file, before any work is done; an
    ``OSError`` names the folder."""
    import tempfile

    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise OSError(f"{what} {folder} is not writable ({e.strerror or e})") from None
    return folder


def check_outputs_distinct(inputs: Sequence[str | Path], outputs: Sequence[str | Path]) -> None:
    """Refuse, before any work, an output path that is any input's path (not only its own input's)."""
    ins = {Path(p).expanduser().resolve(): Path(p) for p in inputs}
    for o in outputs:
        r = Path(o).expanduser().resolve()
        if r in ins:
            raise InputError(f"the output {o} would overwrite the input {ins[r]}; inputs are never overwritten "
                             "(not even with --overwrite): choose another --out folder")
