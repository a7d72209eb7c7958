"""Is amnet_x4's run limited by its 291 training images yet? The same evaluation on training images and on
held-out sets, for resume states along the run (issue 22 asks to show it with train/validation curves).

    python docs/experiments/2026-11-28_amnet_x4_data_limit.py --out docs/experiments/2026-11-28_amnet_x4_data_limit \
        a606f33:checkpoints/amnet_x4/last.pt 655a741:checkpoints/amnet_x4/last.pt runs/amnet_x4/last.pt

Each STATE is a resume state (``last.pt``), as a file or as ``REV:PATH`` in this repository's history. Its weights
become a renderer checkpoint in a temporary folder, and ``blindsr-gym evaluate`` scores it with the true kernel
(``--methods gt``), Gaussian8, PSNR-Y, on TRAIN (default: every 29th of the training images the trainer uses, at
least 192 px; 10 of 291), Set5 and Set14. Training images that the network has fitted better than held-out
images of the same kind would show the data limiting it: the gap between them widening while the held-out
figures stop rising. Writes PREFIX.json (the commands, per state and set) and PREFIX.png.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"


def state_file(spec: str, tmp: Path) -> Path:
    """The resume state at ``spec``: a file, or ``REV:PATH`` read from git into ``tmp``."""
    if Path(spec).is_file():
        return Path(spec)
    rev, _, path = spec.partition(":")
    out = tmp / f"{rev}_{Path(path).name}"
    out.write_bytes(subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True,
                                   capture_output=True).stdout)
    return out


def to_renderer(state: Path, out: Path) -> tuple[Path, int]:
    """The state's weights as a renderer checkpoint (and its iteration count), read as ``train-renderer
    --init last.pt`` reads a state."""
    from blindsr_gym.renderers import build_renderer, save_renderer
    from blindsr_gym.renderers.train import _init_weights

    weights, config, card = _init_weights(str(state), "amnet", None)
    net = build_renderer("amnet", **config)
    net.load_state_dict(weights)
    return save_renderer(net, out, card=card), int(card["training"]["iterations"])


def train_subset(every: int, tmp: Path) -> Path:
    """Every ``every``-th training image of at least 192 px, linked into a folder (the evaluation's TRAIN)."""
    import cv2

    src = DATA / "train"
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".png", ".bmp", ".jpg", ".jpeg"))
    big = [p for p in files if min(cv2.imread(str(p)).shape[:2]) >= 192]
    folder = tmp / "train_subset"
    folder.mkdir()
    for i, p in enumerate(big[::every]):
        (folder / f"{i:02d}_{p.name}").symlink_to(p)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("states", nargs="+")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--every", type=int, default=29)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plot-only", action="store_true", help="redraw PREFIX.png from PREFIX.json")
    args = ap.parse_args()
    if args.plot_only:
        return plot(json.loads(args.out.with_suffix(".json").read_text())["rows"], args.out)
    rows = []
    with tempfile.TemporaryDirectory(prefix="blindsr-data-limit-") as t:
        tmp = Path(t)
        sets = {"train": train_subset(args.every, tmp), "Set5": DATA / "test" / "Set5",
                "Set14": DATA / "test" / "Set14"}
        for spec in args.states:
            ckpt, step = to_renderer(state_file(spec, tmp), tmp / f"amnet_{len(rows)}.safetensors")
            js = tmp / f"eval_{len(rows)}.json"
            cmd = [sys.executable, "-m", "blindsr_gym", "evaluate", "--data", *map(str, sets.values()),
                   "--kernels", "gaussian8", "--methods", "gt", "--renderer", str(ckpt), "--metrics", "psnr",
                   "--threads", str(args.threads), "--no-progress", "--json", str(js)]
            subprocess.run(cmd, check=True, capture_output=True)
            summary = json.loads(js.read_text())["summary"]
            key = {Path(v).name: k for k, v in sets.items()}  # evaluate names a set by its folder
            by_set = {key[r["dataset"]]: round(r["psnr"], 3) for r in summary
                      if r["method"] == "gt" and r.get("kernel") == "mean"}
            rows.append({"state": spec, "iterations": step, "psnr_y_gaussian8": by_set,
                         "images": {k: len(list(Path(v).iterdir())) for k, v in sets.items()}})
            print(json.dumps(rows[-1]), flush=True)
    rows.sort(key=lambda r: r["iterations"])
    out = {"command": "python " + shlex.join([str(Path(sys.argv[0]).relative_to(ROOT))
                                              if Path(sys.argv[0]).is_absolute() else sys.argv[0], *sys.argv[1:]]),
           "evaluation": "blindsr-gym evaluate --kernels gaussian8 --methods gt --metrics psnr (true kernel)",
           "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")

    plot(rows, args.out)


def plot(rows: list[dict], prefix: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 3.6))
    its = [r["iterations"] for r in rows]
    first = rows[0]["psnr_y_gaussian8"]
    for k in ("train", "Set5", "Set14"):
        ax[0].plot(its, [r["psnr_y_gaussian8"][k] - first[k] for r in rows], "o-", label=k)
    ax[0].set(title=f"gain since {its[0]:,} iterations (dB, PSNR-Y, Gaussian8)", xlabel="iteration")
    ax[0].legend()
    for k in ("Set5", "Set14"):
        ax[1].plot(its, [r["psnr_y_gaussian8"]["train"] - r["psnr_y_gaussian8"][k] for r in rows], "o-",
                   label=f"train - {k}")
    ax[1].set(title="training images' lead over held-out (dB)", xlabel="iteration")
    ax[1].legend()
    for a in ax:
        a.grid(alpha=0.3)
        for r in rows:
            if r.get("label"):
                a.annotate(r["label"], (r["iterations"], a.lines[0].get_ydata()[rows.index(r)]), fontsize=8,
                           textcoords="offset points", xytext=(-40, 8))
    fig.suptitle("amnet_x4's run: the same evaluation on training images and on held-out sets")
    fig.tight_layout()
    fig.savefig(prefix.with_suffix(".png"), dpi=100)


if __name__ == "__main__":
    main()
