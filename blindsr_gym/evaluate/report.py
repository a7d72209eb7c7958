"""Records to tables: means over images and kernels (``summarize``), markdown (``to_markdown``), and the figure
panels of ``--figures``."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from blindsr_gym.errors import InputError


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
        from ..utils import to_uint8

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

        from ..fileio import write_image

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
