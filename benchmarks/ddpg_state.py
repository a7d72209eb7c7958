"""A DDPG resume state's replay buffer, kept as pixels against kept as episode sources; prints JSON.

    python benchmarks/ddpg_state.py [--num 20000] [--device cpu] [--data FOLDER]

Fills a replay buffer of ``--num`` transitions (DDPG's default buffer_size, full) with the LR observations of
BlindSR-PSNR-v0's episodes, then saves its state both ways, as ``train_ddpg`` did (the uint8 images) and does
(each episode's generator state, drawn again on load), and loads each back: the bytes of each state as
``torch.save`` writes it, and the time to save and to load (the load with sources draws every image again and
checks it). The images are the same either way (checked).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time

import numpy as np
import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=20_000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default=None, help="a folder of HR images (default: the built-in photos)")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from gymnasium.utils import seeding

    from blindsr_gym.agents.ddpg import ReplayBuffer, make_vec_env

    kw = {"device": args.device, **({"dataset": args.data} if args.data else {})}
    env = make_vec_env("BlindSR-PSNR-v0", 1, **kw)
    # each episode's source as the env keeps it: a generator's state part-way through its stream
    rngs = [seeding.np_random(i)[0] for i in range(args.num)]
    for r in rngs:
        r.random(3)
    sources = [r.bit_generator.state for r in rngs]
    t = time.perf_counter()
    obs = env.observations(sources)
    draw_s = time.perf_counter() - t
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (args.num, env.single_action_space.shape[0])).astype(np.float32)
    rewards = rng.normal(size=args.num).astype(np.float32)
    shape = env.single_observation_space.shape
    out = {"command": "python " + " ".join(sys.argv), "device": args.device, "torch": torch.__version__,
           "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "transitions": args.num, "observation": list(shape), "draw_images_s": round(draw_s, 2)}
    for way, src in (("pixels", None), ("sources", sources)):
        buf = ReplayBuffer(args.num, shape, actions.shape[1])
        buf.add(obs, actions, rewards, sources=src)
        t = time.perf_counter()
        data = io.BytesIO()
        torch.save({"buffer": buf.state_dict()}, data)
        save_s = time.perf_counter() - t
        t = time.perf_counter()
        back = ReplayBuffer(args.num, shape, actions.shape[1])
        report = back.load_state_dict(torch.load(io.BytesIO(data.getvalue()), weights_only=True)["buffer"],
                                      regenerate=env.observations)
        load_s = time.perf_counter() - t
        out[way] = {"state_mib": round(len(data.getvalue()) / 2**20, 2), "save_s": round(save_s, 2),
                    "load_s": round(load_s, 2), "images_equal": bool(np.array_equal(back.obs, obs)), **report}
    out["state_size_ratio_pixels_over_sources"] = round(out["pixels"]["state_mib"] / out["sources"]["state_mib"], 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
