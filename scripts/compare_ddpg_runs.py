"""Side-by-side validation of finished DDPG runs (e.g. Table 5: the Eq. 10 against the Eq. 11 critic).

    python scripts/compare_ddpg_runs.py runs/t5_eq11 runs/t5_eq10 --out docs/table5_cpu

Reads each run's ``actor.json`` card (written by ``blindsr-gym train --algo ddpg``): its training
record and the validation history (fixed, seeded episodes). Writes ``OUT.json`` (with the command),
``OUT.md`` (first, best and final validation reward, the fraction of positive rewards, the metric and
PSNR at the end, wall time) and ``OUT.png`` (validation reward against env steps; needs matplotlib).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load_run(logdir: Path) -> dict:
    card_path = logdir / "actor.json"
    if not card_path.is_file():
        raise FileNotFoundError(f"{card_path} not found: is {logdir} a `blindsr-gym train --algo ddpg` logdir?")
    card = json.loads(card_path.read_text())
    history = card.get("validation_history") or []
    if not history:
        raise ValueError(f"{card_path} has no validation history (the run stopped before its first evaluation)")
    return {"logdir": str(logdir), "training": card["training"], "history": history}


def summarise(run: dict) -> dict:
    h, t = run["history"], run["training"]
    metric = next((k for k in h[-1] if k.startswith("metric_") and not k.endswith("_true_kernel")), None)
    best = max(h, key=lambda e: e["reward"])
    return {"run": run["logdir"], "algorithm": t["algorithm"], "env_id": t["env_id"], "episodes": t["episodes"],
            "wall_time_s": t["wall_time_s"], "first_reward": h[0]["reward"], "first_env_steps": h[0]["env_steps"],
            "best_reward": best["reward"], "best_env_steps": best["env_steps"], "final_reward": h[-1]["reward"],
            "final_positive_frac": h[-1]["reward_positive_frac"], "metric": metric,
            "final_metric": h[-1].get(metric), "metric_true_kernel": h[-1].get(f"{metric}_true_kernel"),
            "final_psnr": h[-1]["psnr"], "psnr_true_kernel": h[-1]["psnr_true_kernel"]}


def markdown(rows: list[dict]) -> str:
    m = rows[0]["metric"] or "metric"
    lines = [f"| run | algorithm | episodes | first reward | best reward (at) | final reward | final positive | "
             f"{m} (true kernel) | PSNR (true kernel) | wall s |", "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['run']} | {r['algorithm']} | {r['episodes']} | {r['first_reward']:.4f} | "
                     f"{r['best_reward']:.4f} ({r['best_env_steps']}) | {r['final_reward']:.4f} | "
                     f"{r['final_positive_frac']:.2f} | {r['final_metric']:.3f} ({r['metric_true_kernel']:.3f}) | "
                     f"{r['final_psnr']:.2f} ({r['psnr_true_kernel']:.2f}) | {r['wall_time_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="DDPG logdirs")
    p.add_argument("--out", required=True, type=Path, help="output stem: OUT.json, OUT.md, OUT.png")
    a = p.parse_args(argv)
    runs = [load_run(r) for r in a.runs]
    rows = [summarise(r) for r in runs]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    cmd = "python scripts/compare_ddpg_runs.py " + " ".join(sys.argv[1:] if argv is None else argv)
    a.out.with_suffix(".json").write_text(json.dumps({"command": cmd, "runs": rows,
                                                      "histories": {r["logdir"]: r["history"] for r in runs}},
                                                     indent=1))
    a.out.with_suffix(".md").write_text(markdown(rows))
    try:
        import matplotlib
    except ImportError:
        print("matplotlib not installed (the plots extra): no PNG", file=sys.stderr)
    else:
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.8))
        for r in runs:
            ax.plot([e["env_steps"] for e in r["history"]], [e["reward"] for e in r["history"]], "o-",
                    label=f"{Path(r['logdir']).name}: {r['training']['algorithm']}")
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("env steps (episodes)")
        ax.set_ylabel("validation reward (Eq. 8)")
        ax.set_title(runs[0]["training"]["env_id"])
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(a.out.with_suffix(".png"), dpi=110)
    print(markdown(rows) + cmd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
