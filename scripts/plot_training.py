"""Plot TensorBoard scalars of a run: python scripts/plot_training.py RUN_DIR OUT.png [--tags val/psnr_y train/l1]

Reads the event files under RUN_DIR (recursively) and draws one panel per tag against the step.
Needs matplotlib (the plots extra).
"""

import argparse
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def scalars(run: Path, tag: str) -> tuple[list[int], list[float]]:
    points = {}
    for ev in sorted(run.rglob("events.out.tfevents*")):
        acc = EventAccumulator(str(ev), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            for e in acc.Scalars(tag):
                points[e.step] = e.value  # later files (resumed runs) win
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--tags", nargs="+", default=["val/psnr_y", "train/l1"])
    ap.add_argument("--title", default=None)
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.tags), figsize=(5 * len(args.tags), 3.5), squeeze=False)
    for ax, tag in zip(axes[0], args.tags, strict=True):
        steps, values = scalars(args.run, tag)
        if not steps:
            raise SystemExit(f"no scalar {tag!r} under {args.run}")
        ax.plot(steps, values, marker="o" if len(steps) < 40 else None, ms=3)
        ax.set_xlabel("iteration")
        ax.set_title(tag)
        ax.grid(alpha=0.3)
    fig.suptitle(args.title or args.run.name)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
