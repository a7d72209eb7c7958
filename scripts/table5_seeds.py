"""Table 5 with seeds: groups of DDPG runs (Eq. 10 against Eq. 11, say), mean ± std over the seeds.

    python scripts/table5_seeds.py --group "Eq. 10" runs/t5_eq10_s0 runs/t5_eq10_s1 runs/t5_eq10_s2 \\
        --group "Eq. 11" runs/t5_eq11_s0 runs/t5_eq11_s1 runs/t5_eq11_s2 \\
        --data ../shared/data/test/Set5 ../shared/data/test/BSD100 --kernels sigma:0.2,1.3,2.6 \\
        --out docs/table5_seeds

Each run is a ``blindsr-gym train --algo ddpg`` logdir. Its card (``actor.json``) gives the validation
history, the reward curve; its actor (``actor.safetensors``) is scored by the evaluation harness on ``--data``
degraded with ``--kernels``, through the renderer of the run's env (``amgan-rl`` for BlindSR-NIQE-v0,
``amnet-rl`` otherwise), on the env's metric (``--metrics`` to choose). The renderer with the true kernel
(``amgan-gt`` / ``gt``) is scored once, as the reference row. Every evaluation keeps a per-image log in
``--logs`` (one per run), so a stopped one resumes where it stopped and a finished one is not recomputed.

Per group and dataset: the mean over the seeds of each run's mean score, with the sample standard deviation
(n - 1) over the seeds. Two groups differ on a dataset only when their means are further apart than the
larger of their two standard deviations; otherwise the table says the difference is within the seeds'
spread (with one seed per group there is no spread, and no difference is claimed). Each group is held
against the true kernel's row the same way (its mean minus the reference's, against the group's std); one
group alone is allowed for that comparison. Writes ``OUT.json`` (with
the command), ``OUT.md`` and ``OUT.png`` (the validation reward of every run against episodes, each group's
mean over its seeds drawn over them; needs matplotlib).

Selection discipline: the runs' checkpoints must have been chosen on Set14 (the validation the card
records); this script chooses nothing, it reports.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from compare_ddpg_runs import load_run  # noqa: E402

from blindsr_gym import ENV_IDS  # noqa: E402
from blindsr_gym.errors import InputError  # noqa: E402


def read_run(logdir: Path) -> dict:
    """A finished DDPG logdir: its card's training record and validation history (``load_run``), its actor,
    and the renderer, reference method and metric of its env."""
    actor = logdir / "actor.safetensors"
    try:
        run = load_run(logdir)
    except (FileNotFoundError, ValueError) as e:
        raise InputError(str(e)) from None
    if not actor.is_file():
        raise InputError(f"{actor} not found: is {logdir} a finished `blindsr-gym train --algo ddpg` logdir?")
    t, history = run["training"], run["history"]
    defaults = ENV_IDS.get(t["env_id"], {})
    env = {**defaults, **(t.get("env_kwargs") or {})}
    renderer = env.get("renderer", "amnet_x4")
    gan = "amgan" in str(renderer)
    validation = (t.get("eval_env_kwargs") or {}).get("dataset", "the env's default data")
    return {"label": logdir.name, "env_id": t["env_id"], "logdir": str(logdir), "actor": str(actor),
            "renderer": str(renderer), "method": "amgan-rl" if gan else "amnet-rl",
            "reference": "amgan-gt" if gan else "gt", "metric": env.get("metric", "psnr"),
            "validation_data": str(validation), "algorithm": t.get("algorithm"), "episodes": t.get("episodes"),
            "seed": t.get("seed"), "wall_time_s": t.get("wall_time_s"), "history": history}


def _log_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label) + ".jsonl"


def score(method, datasets, kernels, metrics, log: Path, device, progress: bool, max_images: int | None) -> dict:
    """``{dataset: {metric: mean over images and kernels}}`` of one method, resumed from its per-image log."""
    from blindsr_gym.evaluate.harness import evaluate
    from blindsr_gym.evaluate.report import summarize

    log.parent.mkdir(parents=True, exist_ok=True)
    records = evaluate(datasets, kernels, [method], metrics, 4, device, max_images=max_images, progress=progress,
                       log=log, resume=log.is_file())
    return {r["dataset"]: {m: r[m] for m in metrics} for r in summarize(records, metrics)}


def mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else float("nan")


def compare(groups: dict[str, dict], datasets: list[str], metric: str) -> list[dict]:
    """Every pair of groups on every dataset: the difference of the means against the larger std."""
    names, out = list(groups), []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for d in datasets:
                (ma, sa), (mb, sb) = groups[a]["scores"][d][metric], groups[b]["scores"][d][metric]
                spread = max(sa, sb)
                diff = mb - ma
                within = not (abs(diff) > spread)  # NaN spread (one seed): never called a difference
                out.append({"a": a, "b": b, "dataset": d, "metric": metric, "b_minus_a": diff, "spread": spread,
                            "within_spread": within})
    return out


def against_reference(groups: dict[str, dict], reference: dict, datasets: list[str], metric: str) -> list[dict]:
    """Every group against the renderer with the true kernel, on every dataset: the group's mean minus the
    reference's (one deterministic score, no spread of its own) against the group's std over its seeds."""
    out = []
    for name, g in groups.items():
        for d in datasets:
            mean, sd = g["scores"][d][metric]
            diff = mean - reference[d][metric]
            out.append({"group": name, "dataset": d, "metric": metric, "minus_reference": diff, "spread": sd,
                        "within_spread": not (abs(diff) > sd)})  # NaN spread (one seed): never a difference
    return out


def markdown(doc: dict) -> str:
    metric, datasets = doc["metric"], doc["datasets"]
    better = "lower" if doc["lower_better"] else "higher"
    head = "| group | seeds | " + " | ".join(f"{d} {metric.upper()}" for d in datasets) + \
        " | final validation reward |"
    lines = [head, "|" + "---|" * (3 + len(datasets))]
    def pm(mean_sd):  # one seed has no spread
        return f"{mean_sd[0]:.3f}" if math.isnan(mean_sd[1]) else f"{mean_sd[0]:.3f} ± {mean_sd[1]:.3f}"

    for name, g in doc["groups"].items():
        cells = [pm(g["scores"][d][metric]) for d in datasets]
        lines.append(f"| {name} | {len(g['runs'])} | " + " | ".join(cells) + f" | {pm(g['final_reward'])} |")
    ref = doc["reference"]
    lines.append(f"| true kernel ({ref['method']}) | – | " +
                 " | ".join(f"{ref['scores'][d][metric]:.3f}" for d in datasets) + " | – |")
    lines += ["", f"Mean ± sample std over the seeds of each run's mean {metric.upper()} ({better} is better) over "
              f"the images and the kernels {doc['kernels']}; the validation reward (Eq. 8) is the runs' own, on "
              f"{', '.join(doc['validation_data'])}. Per run:", ""]
    lines += ["| run | group | seed | episodes | " + " | ".join(datasets) + " | final reward |",
              "|" + "---|" * (5 + len(datasets))]
    for name, g in doc["groups"].items():
        for r in g["runs"]:
            lines.append(f"| {r['label']} | {name} | {r['seed']} | {r['episodes']} | " +
                         " | ".join(f"{r['scores'][d][metric]:.3f}" for d in datasets) +
                         f" | {r['history'][-1]['reward']:.3f} |")
    lines.append("")
    for c in doc["comparisons"]:
        winner = c["b"] if (c["b_minus_a"] < 0) == doc["lower_better"] else c["a"]
        head = f"- {c['dataset']}: {c['b']} − {c['a']} = {c['b_minus_a']:+.3f} {metric.upper()}"
        if math.isnan(c["spread"]):
            lines.append(f"{head}; one seed per group, so no spread to compare with: no difference is claimed.")
            continue
        verdict = "within the seeds' spread: no difference is claimed" if c["within_spread"] else \
            f"larger than the seeds' spread: {winner} is better"
        lines.append(f"{head}, largest std {c['spread']:.3f}: {verdict}.")
    ref_name = f"true kernel ({doc['reference']['method']})"
    for c in doc.get("against_reference", []):
        head = f"- {c['dataset']}: {c['group']} − {ref_name} = {c['minus_reference']:+.3f} {metric.upper()}"
        if math.isnan(c["spread"]):
            lines.append(f"{head}; one seed, so no spread to compare with: no difference is claimed.")
            continue
        side = "better" if (c["minus_reference"] < 0) == doc["lower_better"] else "worse"
        verdict = "within the seeds' spread: no difference is claimed" if c["within_spread"] else \
            f"larger than the seeds' spread: {c['group']} is {side}"
        lines.append(f"{head}, std {c['spread']:.3f}: {verdict}.")
    return "\n".join(lines) + "\n"


def plot(doc: dict, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib not installed (the plots extra): no PNG", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, (name, g) in enumerate(doc["groups"].items()):
        colour = f"C{i}"
        for r in g["runs"]:
            h = r["history"]
            ax.plot([e["env_steps"] for e in h], [e["reward"] for e in h], color=colour, lw=0.8, alpha=0.35)
        steps = sorted(set.intersection(*({e["env_steps"] for e in r["history"]} for r in g["runs"])))
        if steps:
            by = [{e["env_steps"]: e["reward"] for e in r["history"]} for r in g["runs"]]
            vals = np.array([[b[s] for s in steps] for b in by])
            ax.plot(steps, vals.mean(0), "o-", color=colour, lw=2, ms=3, label=f"{name}: mean of {len(by)} seeds")
            if len(by) > 1:
                sd = vals.std(0, ddof=1)
                ax.fill_between(steps, vals.mean(0) - sd, vals.mean(0) + sd, color=colour, alpha=0.15)
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("episodes (env steps)")
    ax.set_ylabel(f"validation reward (Eq. 8), {', '.join(Path(v).name for v in doc['validation_data'])}")
    ax.set_title(f"{doc['env_id']}: each seed (thin), mean ± std over seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--group", nargs="+", action="append", required=True, metavar=("NAME", "RUN"),
                   help="a group's name, then its runs (DDPG logdirs, one per seed); give --group again for "
                        "another group")
    p.add_argument("--data", nargs="+", required=True, help="HR image folders (test sets), or 'builtin'")
    p.add_argument("--kernels", default="sigma:0.2,1.3,2.6", help="as `blindsr-gym evaluate --kernels`")
    p.add_argument("--metrics", default=None, help="default: the runs' env metric")
    p.add_argument("--max-images", type=int, default=None, help="first N images of each dataset")
    p.add_argument("--logs", type=Path, default=Path("runs/table5_logs"), help="per-image logs, one per run")
    p.add_argument("--out", type=Path, required=True, help="output stem: OUT.json, OUT.md, OUT.png")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)

    import torch

    from blindsr_gym.evaluate.harness import load_datasets, parse_kernels
    from blindsr_gym.evaluate.methods import make_method
    from blindsr_gym.metrics import get_metric
    from blindsr_gym.utils import resolve_device

    if a.threads:
        torch.set_num_threads(a.threads)
    groups_in: dict[str, list[Path]] = {}
    for g in a.group:
        if len(g) < 2:
            raise InputError(f"--group {g[0]!r} names no run: give its name, then its run folders")
        if g[0] in groups_in:
            raise InputError(f"group {g[0]!r} given twice")
        groups_in[g[0]] = [Path(r) for r in g[1:]]
    runs = {name: [read_run(r) for r in paths] for name, paths in groups_in.items()}
    every = [r for rs in runs.values() for r in rs]
    labels = [r["label"] for r in every]
    if len(set(labels)) != len(labels):
        raise InputError(f"run folders must have distinct names (their logs are named after them): {labels}")
    for key in ("method", "renderer", "metric", "env_id"):
        if len({r[key] for r in every}) > 1:
            raise InputError(f"the runs differ in {key} ({sorted({r[key] for r in every})}): Table 5 compares "
                             "runs of one env")
    metrics = [m.strip() for m in (a.metrics or every[0]["metric"]).split(",") if m.strip()]
    for m in metrics:
        get_metric(m)
    device = resolve_device(a.device)
    datasets = load_datasets(a.data, 4)
    kernels = parse_kernels(a.kernels, 4)
    progress = not a.no_progress
    first = every[0]
    ref_kw = {"renderer": first["renderer"], "gan_renderer": first["renderer"]}
    reference = make_method(first["reference"], scale=4, device=device, **ref_kw)
    ref_scores = score(reference, datasets, kernels, metrics, a.logs / _log_name(f"reference_{first['renderer']}"),
                       device, progress, a.max_images)
    doc_groups = {}
    for name, rs in runs.items():
        for r in rs:
            m = make_method(r["method"], scale=4, device=device, actor=r["actor"], gan_actor=r["actor"], **ref_kw)
            m = dataclasses.replace(m, name=f"{r['method']}:{r['label']}")
            r["scores"] = score(m, datasets, kernels, metrics, a.logs / _log_name(r["label"]), device, progress,
                                a.max_images)
        doc_groups[name] = {
            "runs": rs,
            "scores": {d: {k: mean_std([r["scores"][d][k] for r in rs]) for k in metrics} for d in datasets},
            "final_reward": mean_std([r["history"][-1]["reward"] for r in rs])}
    metric = metrics[0]
    cmd = shlex.join(["python", "scripts/table5_seeds.py", *(sys.argv[1:] if argv is None else argv)])
    doc = {"command": cmd, "env_id": every[0]["env_id"], "metric": metric, "metrics": metrics,
           "lower_better": bool(get_metric(metric).lower_better), "datasets": list(datasets),
           "kernels": a.kernels, "max_images": a.max_images, "device": str(device),
           "validation_data": sorted({r["validation_data"] for r in every}),
           "reference": {"method": reference.name, "scores": ref_scores}, "groups": doc_groups,
           "comparisons": compare(doc_groups, list(datasets), metric),
           "against_reference": against_reference(doc_groups, ref_scores, list(datasets), metric)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    md = markdown(doc) + f"\nMade by:\n\n    {cmd}\n"
    a.out.with_suffix(".md").write_text(md)
    plot(doc, a.out.with_suffix(".png"))
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
