"""Multiply-accumulates of one training step of each shipped model, and of their whole runs: the compute
budget that DAN's card is matched to (amnet_x4 plus actor_psnr_x4), and the budget of AMNet-RL with
amnet_robust_x4 (amnet_x4 fine-tuned with --code-blur, counted with its init), which DAN is not matched to.
Prints JSON.

    python scripts/training_macs.py

A step is the forward and backward pass of one batch at the setting the model was trained with, counted by
``torch.utils.flop_counter`` (MACs = FLOPs / 2); the optimiser step and the data synthesis (blur and
resize of the HR crops) are not counted. Iterations are read from the shipped cards: a card whose run
started from another checkpoint of the same model (``--init``: a warm start or a fine-tuning stage) counts
that checkpoint's iterations too (its ``init_training``, recursively: an actor card keeps the init's
``training``, a renderer card the init's whole card), each stage at its own batch and patch.
"""

from __future__ import annotations

import json
import math
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode


def step_macs(loss_fn, batch: torch.Tensor, *args) -> float:
    with FlopCounterMode(display=False) as fc:
        loss_fn(batch, *args).backward()
    return fc.get_total_flops() / 2


def main() -> int:
    from blindsr_gym.agents import _resolve as resolve_actor
    from blindsr_gym.agents.networks import Actor
    from blindsr_gym.renderers import build_renderer, read_model_card

    torch.manual_seed(0)
    amnet, dan = build_renderer("amnet"), build_renderer("dan")
    actor = Actor(head="sigma", codec=amnet.codec)  # the codec's action table: the `sr` stage calls actor(lr)
    cards = {"amnet_x4": read_model_card("amnet_x4"), "dan_x4": read_model_card("dan_x4"),
             "actor_psnr_x4": json.loads(resolve_actor("actor_psnr_x4").with_suffix(".json").read_text()),
             "amnet_robust_x4": read_model_card("amnet_robust_x4")}

    frozen = build_renderer("amnet").requires_grad_(False)  # the `sr` loss renders through amnet_x4, frozen

    def stages(t: dict) -> list[tuple[int, int, int, bool]]:
        """``(batch, lr_patch, iterations, through_renderer)`` of a card's run and of the runs it started from."""
        if t.get("loss") == "sr" and t.get("renderer", "amnet_x4") != "amnet_x4":
            raise ValueError(f"an `sr` stage through {t['renderer']}: count that renderer before using this script")
        own = (t["batch"], t.get("lr_patch", t.get("patch")), t["iterations"], t.get("loss") == "sr")
        init = t.get("init_training")
        if not init or t.get("gan"):
            return [own]
        # an actor card keeps its init's `training`; a renderer card keeps the init's whole card
        return [own] + stages(init.get("training", init))

    def actor_loss(lr, through_renderer=False):
        if through_renderer:  # the actor's action rendered by the frozen AMNet: forward and backward through it
            return frozen(lr, frozen.codec.action_to_code(actor(lr))).mean()
        return actor.sigma(lr).mean()

    def dan_loss(lr):
        srs, codes = dan(lr)
        return sum(s.mean() for s in srs) + sum(c.mean() for c in codes)

    def amnet_loss(lr, _):
        return amnet(lr, torch.rand(len(lr), amnet.codec.length)).mean()

    rows, pmac, last_step = {}, {}, {}
    for name, fn in (("amnet_x4", amnet_loss), ("dan_x4", lambda lr, _: dan_loss(lr)), ("actor_psnr_x4", actor_loss),
                     ("amnet_robust_x4", amnet_loss)):
        runs, macs = stages(cards[name]["training"]), {}
        for n, p, _, sr in runs:
            if (n, p, sr) not in macs:
                macs[n, p, sr] = step_macs(fn, torch.rand(n, 3, p, p), sr)
        pmac[name] = sum(macs[n, p, sr] * its for n, p, its, sr in runs) / 1e15
        n, p, _, sr = runs[0]
        last_step[name] = macs[n, p, sr]  # the newest stage's setting
        rows[name] = {"batch": n, "lr_patch": p, "gmac_per_iteration": round(last_step[name] / 1e9, 1),
                      "iterations": sum(r[2] for r in runs), "pmac": round(pmac[name], 3)}
        if len(runs) > 1:
            rows[name]["stages"] = [{"batch": n, "lr_patch": p, "iterations": its, "through_renderer": sr,
                                     "gmac_per_iteration": round(macs[n, p, sr] / 1e9, 1)}
                                    for n, p, its, sr in runs[::-1]]
    budget = pmac["amnet_x4"] + pmac["actor_psnr_x4"]
    short = max(budget - pmac["dan_x4"], 0.0)
    out = {"command": "python " + " ".join(sys.argv), "models": rows, "amnet_plus_actor_pmac": round(budget, 3),
           "dan_over_budget": round(pmac["dan_x4"] / budget, 3),
           "dan_iterations_for_budget": rows["dan_x4"]["iterations"] + math.ceil(short * 1e15 / last_step["dan_x4"]),
           "amnet_robust_plus_actor_pmac": round(pmac["amnet_robust_x4"] + pmac["actor_psnr_x4"], 3)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
