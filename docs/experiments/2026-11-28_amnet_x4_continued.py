"""The curve of the amnet_x4 run continued on the CPU (2026-11-28): Set5 Gaussian8 validation PSNR-Y and the
training L1, from the run's TensorBoard, with the shipped 8,000-iteration point from amnet_x4's card.

    python docs/experiments/2026-11-28_amnet_x4_continued.py runs/amnet_x4/tb \
        docs/experiments/2026-11-28_amnet_x4_continued

writes PREFIX.json (every point) and PREFIX.png. The 9,000-iteration validation (30.718 dB) was dropped from the
TensorBoard by the purge defect of that day (docs/experiments/2026-11-28_regional_compile.md); it is added from
the session's record.
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    tb, prefix = sys.argv[1], Path(sys.argv[2])
    acc = EventAccumulator(tb, size_guidance={"scalars": 0})
    acc.Reload()
    card = json.loads((ROOT / "renderers/weights/amnet_x4.json").read_text())
    shipped = next(r["psnr"] for r in card["evaluation"]["gaussian8"]["summary"]
                   if r["method"] == "gt" and r["dataset"] == "Set5")
    val = {8000: shipped, 9000: 30.7177}
    val.update({e.step: e.value for e in acc.Scalars("val/psnr_y")})
    l1 = [(e.step, e.value) for e in acc.Scalars("train/l1")]
    out = {"command": "python " + " ".join(sys.argv), "val_psnr_y_set5_gaussian8": dict(sorted(val.items())),
           "train_l1": l1}
    prefix.with_suffix(".json").write_text(json.dumps(out, indent=1))
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.6))
    steps = sorted(val)
    ax[0].plot(steps, [val[s] for s in steps], "o-")
    ax[0].set(title="Set5 Gaussian8 PSNR-Y (validation), dB", xlabel="iteration")
    s, v = np.array(l1).T
    k = 10
    ax[1].plot(s, v, alpha=0.3, label="every 20 iterations")
    ax[1].plot(s[k - 1:], np.convolve(v, np.ones(k) / k, "valid"), label=f"mean of {k}")
    ax[1].set(title="training L1", xlabel="iteration")
    ax[1].legend()
    for a in ax:
        a.grid(alpha=0.3)
    fig.suptitle("amnet_x4's run continued on 2 CPU threads (batch 16, LR 48², lr 2e-4), 2026-11-28")
    fig.tight_layout()
    fig.savefig(prefix.with_suffix(".png"), dpi=100)


if __name__ == "__main__":
    main()
