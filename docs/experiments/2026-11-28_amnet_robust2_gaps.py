"""Where the blind pipeline loses to the true kernel, per Set14 image, with amnet2_x4 and with amnet_robust2_x4:
PSNR-Y with the true kernel's code minus with the estimator's (dB, mean over the Gaussian8 widths), read from
the per-image logs of the Table 2 evaluations (the commands are in docs/results.md):

    python docs/experiments/2026-11-28_amnet_robust2_gaps.py docs/experiments/2026-11-28_amnet_robust2_gaps \
        amnet2_x4=runs/amnet_x4/eval_amnet2_blind.jsonl amnet_robust2_x4=runs/amnet2_cb/eval_robust2.jsonl \
        "amnet_robust2_x4 + actor_psnr_rl2_x4=runs/amnet2_cb/eval_robust2.jsonl+runs/amnet2_cb/eval_robust2_rl2.jsonl"

Each ``LABEL=LOG[+LOG]`` is one pipeline: its ``gt`` rows and its ``amnet-rl`` rows (the last log that has
them). Writes PREFIX.json (per image, per set: the mean gap of every pipeline and method) and PREFIX.png
(Set14's per-image gaps, the selection set).
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read(logs: list[str]) -> dict:
    """(method, dataset, image, kernel) -> psnr over the logs, a later log's rows replacing an earlier's."""
    rows = {}
    for log in logs:
        for line in Path(log).read_text().splitlines():
            r = json.loads(line)
            if "method" in r:
                rows[r["method"], r["dataset"], r["image"], r["kernel"]] = r["psnr"]
    return rows


def gaps(rows: dict, method: str) -> dict:
    """dataset -> image -> mean over kernels of gt minus ``method``."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for (m, d, im, k), v in rows.items():
        if m == method:
            out[d][im].append(rows["gt", d, im, k] - v)
    return {d: {im: float(np.mean(v)) for im, v in sorted(ims.items())} for d, ims in out.items()}


def main() -> int:
    prefix, specs = Path(sys.argv[1]), sys.argv[2:]
    result = {"command": "python docs/experiments/2026-11-28_amnet_robust2_gaps.py " + " ".join(
        f'"{a}"' if " " in a else a for a in sys.argv[1:]), "pipelines": {}}
    for spec in specs:
        label, logs = spec.split("=", 1)
        g = gaps(read(logs.split("+")), "amnet-rl")
        result["pipelines"][label] = {"per_image_gap_db": g,
                                      "mean_gap_db": {d: round(float(np.mean(list(v.values()))), 3)
                                                      for d, v in g.items()}}
    prefix.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")

    labels = list(result["pipelines"])
    images = sorted(result["pipelines"][labels[0]]["per_image_gap_db"]["Set14"])
    fig, ax = plt.subplots(figsize=(11, 4))
    w = 0.8 / len(labels)
    for j, label in enumerate(labels):
        p = result["pipelines"][label]
        v = [p["per_image_gap_db"]["Set14"][im] for im in images]
        ax.bar(np.arange(len(images)) + (j - (len(labels) - 1) / 2) * w, v, w,
               label=f"{label} (mean {p['mean_gap_db']['Set14']:.2f} dB)")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(np.arange(len(images)), [im.rsplit(".", 1)[0] for im in images], rotation=40, ha="right")
    ax.set_ylabel("true kernel minus blind (dB)")
    ax.set_title("Set14 (selection set), Gaussian8, actor_psnr_x4 unless named: PSNR-Y lost to the blind estimate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(prefix.with_suffix(".png"), dpi=110)
    print(json.dumps({label: p["mean_gap_db"] for label, p in result["pipelines"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
