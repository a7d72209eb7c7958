"""The per-image evaluation log (``--log``, ``--resume``): one JSON line per result, appended as it is computed."""

from __future__ import annotations

import json
from pathlib import Path

from blindsr_gym.errors import InputError

from ..fileio import write_text


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
