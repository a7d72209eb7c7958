"""Why a DDPG run did or did not improve its actor, as curves: the critic's fit, the reward, the action drift.

    python scripts/ddpg_curves.py runs/diag/psnr_s0 runs/diag/niqe_s0 --out docs/experiments/ddpg_curves

Reads each ``blindsr-gym train --algo ddpg`` logdir's TensorBoard scalars: ``losses/critic_r2`` (the share
of a replayed batch's reward variance the critic's Q explains, once per iteration, after its critic steps),
``eval/reward`` (the mean Eq. 8 reward on the fixed validation episodes) and ``eval/width_log_ratio`` (the
mean log of the width the actions' kernels spread like over the true width: > 0 reads wider than the truth).
Writes ``OUT.json`` (the command, every run's series) and ``OUT.png`` (three panels, one line per run; the
critic's fit also as a running mean over ``--window`` iterations). Runs made before the fit and the width
were logged (2026-11-28) have only the reward panel.

The x-axis is the runs' env steps (the episodes; with ``--actor-gradient env`` twice their number, every episode
being rendered at two widths), or with ``--x iterations`` the actor steps' iterations, read from each run's card
(``actor.json``: ``num_envs`` env steps an iteration, twice that with the env's gradient), which puts a
critic-slope run and an env-slope run of the same batch side by side.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

TAGS = {"critic_r2": "losses/critic_r2", "reward": "eval/reward", "width_log_ratio": "eval/width_log_ratio"}


def read_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{name: [(episodes, value), ...]}`` for TAGS, from every event file in ``logdir`` (a resumed run
    writes several; a step seen twice keeps its last value)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(logdir.glob("events.out.tfevents.*"))
    if not files:
        raise FileNotFoundError(f"no TensorBoard events in {logdir}: is it a `blindsr-gym train --algo ddpg` logdir?")
    out: dict[str, dict[int, float]] = {k: {} for k in TAGS}
    for f in files:
        ea = EventAccumulator(str(f), size_guidance={"scalars": 0})
        ea.Reload()
        have = set(ea.Tags()["scalars"])
        for name, tag in TAGS.items():
            if tag in have:
                out[name].update({int(e.step): float(e.value) for e in ea.Scalars(tag)})
    return {k: sorted(v.items()) for k, v in out.items()}


def running_mean(values: list[float], window: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    lo = np.maximum(np.arange(1, len(v) + 1) - window, 0)
    return (c[1:] - c[lo]) / (np.arange(1, len(v) + 1) - lo)


def steps_per_iteration(logdir: Path) -> int:
    """Env steps of one DDPG iteration of the run in ``logdir``, from its card."""
    card = logdir / "actor.json"
    if not card.is_file():
        raise FileNotFoundError(f"--x iterations: no {card} (the card a DDPG run writes at its checkpoints)")
    t = json.loads(card.read_text())["training"]
    return int(t["num_envs"]) * (2 if t.get("actor_gradient") == "env" else 1)


def plot(runs: dict[str, dict], path: Path, window: int, xlabel: str = "env steps") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for i, (label, s) in enumerate(runs.items()):
        colour = f"C{i}"
        if s["critic_r2"]:
            x, y = zip(*s["critic_r2"], strict=True)
            axes[0].plot(x, y, color=colour, alpha=0.25, lw=0.8)
            axes[0].plot(x, running_mean(y, window), color=colour, lw=2, label=label)
        for ax, name in ((axes[1], "reward"), (axes[2], "width_log_ratio")):
            if s[name]:
                x, y = zip(*s[name], strict=True)
                ax.plot(x, y, "o-", color=colour, label=label)
    axes[0].set(title=f"critic fit: R² of Q on a replayed batch (mean of {window})", xlabel=xlabel,
                ylabel="1 - MSE / var(reward)")
    axes[0].set_ylim(-1, 1)
    axes[1].set(title="validation reward (Eq. 8)", xlabel=xlabel, ylabel="mean reward")
    axes[2].set(title="action drift: log(read width / true width)", xlabel=xlabel, ylabel="mean log ratio")
    for ax in axes:
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="DDPG logdirs (`blindsr-gym train --algo ddpg --logdir`)")
    p.add_argument("--labels", nargs="*", default=None, help="one label per run (default: the folder names)")
    p.add_argument("--window", type=int, default=8, help="iterations in the running mean of the critic's fit")
    p.add_argument("--x", choices=("env_steps", "iterations"), default="env_steps",
                   help="x-axis: env steps (renders), or iterations (actor steps) from each run's card")
    p.add_argument("--out", required=True, help="writes OUT.json and OUT.png")
    a = p.parse_args(argv)
    labels = a.labels or [Path(r).name for r in a.runs]
    if len(labels) != len(a.runs):
        p.error(f"--labels: {len(labels)} labels for {len(a.runs)} runs")
    runs = {}
    for label, run in zip(labels, a.runs, strict=True):
        try:
            series = read_scalars(Path(run))
            if a.x == "iterations":
                per = steps_per_iteration(Path(run))
                series = {k: [(step // per, v) for step, v in pts] for k, pts in series.items()}
            runs[label] = series
        except FileNotFoundError as e:
            raise SystemExit(str(e)) from None
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": "python " + " ".join(shlex.quote(x) for x in [sys.argv[0], *(argv or sys.argv[1:])]),
              "window": a.window, "x": a.x, "runs": dict(zip(labels, a.runs, strict=True)), "series": runs}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    plot(runs, out.with_suffix(".png"), a.window,
         "iterations (actor steps)" if a.x == "iterations" else "env steps (episodes; x2 with the env's gradient)")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
