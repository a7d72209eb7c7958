"""Multiply-accumulates of one training step of each shipped model, and of their whole runs: the compute
budget that DAN's card is matched to (amnet_x4 plus actor_psnr_x4). Prints JSON.

    python scripts/training_macs.py

A step is the forward and backward pass of one batch at the setting the model was trained with, counted by
``torch.utils.flop_counter`` (MACs = FLOPs / 2); the optimiser step and the data synthesis (blur and
resize of the HR crops) are not counted. Iterations are read from the shipped cards.
"""

from __future__ import annotations

import json
import math
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode


def step_macs(loss_fn, batch: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as fc:
        loss_fn(batch).backward()
    return fc.get_total_flops() / 2


def main() -> int:
    from blindsr_gym.agents import _resolve as resolve_actor
    from blindsr_gym.agents.networks import Actor
    from blindsr_gym.renderers import build_renderer, read_model_card

    torch.manual_seed(0)
    amnet, dan, actor = build_renderer("amnet"), build_renderer("dan"), Actor(head="sigma")
    cards = {"amnet_x4": read_model_card("amnet_x4"), "dan_x4": read_model_card("dan_x4"),
             "actor_psnr_x4": json.loads(resolve_actor("actor_psnr_x4").with_suffix(".json").read_text())}

    def batch(name):
        t = cards[name]["training"]
        return t["batch"], t.get("lr_patch", t.get("patch"))

    def dan_loss(lr):
        srs, codes = dan(lr)
        return sum(s.mean() for s in srs) + sum(c.mean() for c in codes)

    rows, pmac = {}, {}
    for name, fn in (("amnet_x4", lambda lr: amnet(lr, torch.rand(len(lr), amnet.codec.length)).mean()),
                     ("dan_x4", dan_loss), ("actor_psnr_x4", lambda lr: actor.sigma(lr).mean())):
        n, p = batch(name)
        per_step = step_macs(fn, torch.rand(n, 3, p, p))
        its = cards[name]["training"]["iterations"]
        pmac[name] = (per_step, per_step * its / 1e15)
        rows[name] = {"batch": n, "lr_patch": p, "gmac_per_iteration": round(per_step / 1e9, 1),
                      "iterations": its, "pmac": round(pmac[name][1], 3)}
    budget = pmac["amnet_x4"][1] + pmac["actor_psnr_x4"][1]
    out = {"command": "python " + " ".join(sys.argv), "models": rows, "amnet_plus_actor_pmac": round(budget, 3),
           "dan_over_budget": round(pmac["dan_x4"][1] / budget, 3),
           "dan_iterations_for_budget": math.ceil(budget * 1e15 / pmac["dan_x4"][0])}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
