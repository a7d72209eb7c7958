"""A DDPG resume state's replay buffer, kept as pixels against kept as episode sources; prints JSON.

    python benchmarks/ddpg_state.py [--num 20000] [--device cpu] [--data FOLDER] [--sb3]

Fills a replay buffer of ``--num`` transitions (DDPG's default buffer_size, full) with the LR observations of
BlindSR-PSNR-v0's episodes, then saves its state both ways, as ``train_ddpg`` did (the uint8 images) and does
(each episode's generator state, drawn again on load), and loads each back: the bytes of each state as
``torch.save`` writes it, and the time to save and to load (the load with sources draws every image again and
checks it). The images are the same either way (checked).

``--sb3`` measures the same for Stable-Baselines3's buffer (``save_replay_buffer``'s pickle, 16 envs): SB3's
own ``ReplayBuffer`` (the images, twice: observation and terminal observation) against
:class:`~blindsr_gym.agents.sb3.SourcedReplayBuffer` (the sources; ``redraw`` after the load).
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
    p.add_argument("--sb3", action="store_true", help="also SB3's replay buffer, pickled both ways")
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
    if args.sb3:
        out["sb3"] = sb3_buffers(env, obs, sources, actions, rewards, n_envs=16)
    print(json.dumps(out, indent=1))


def sb3_buffers(env, obs, sources, actions, rewards, n_envs: int) -> dict:
    """SB3's replay buffer and ours, filled with the same transitions, pickled as ``save_replay_buffer`` does."""
    import pickle

    import gymnasium as gym
    from stable_baselines3.common.buffers import ReplayBuffer as SB3ReplayBuffer

    from blindsr_gym.agents.sb3 import SourcedReplayBuffer

    n = len(obs) // n_envs * n_envs
    chw = np.ascontiguousarray(obs[:n].transpose(0, 3, 1, 2))  # SB3 keeps images channels-first
    space = gym.spaces.Box(0, 255, chw.shape[1:], np.uint8)
    res = {"n_envs": n_envs, "transitions": n}
    for way, cls in (("sb3_replay_buffer", SB3ReplayBuffer), ("sourced_replay_buffer", SourcedReplayBuffer)):
        buf = cls(n, space, env.single_action_space, device="cpu", n_envs=n_envs)
        for i in range(0, n, n_envs):
            rows = slice(i, i + n_envs)
            buf.add(chw[rows], chw[rows], actions[rows], rewards[rows], np.ones(n_envs, np.float32),
                    [{"TimeLimit.truncated": False, "episode_source": src} for src in sources[rows]])
        t = time.perf_counter()
        data = pickle.dumps(buf, protocol=pickle.HIGHEST_PROTOCOL)
        save_s = time.perf_counter() - t
        t = time.perf_counter()
        back = pickle.loads(data)
        report = back.redraw(env.observations) if isinstance(back, SourcedReplayBuffer) else {}
        load_s = time.perf_counter() - t
        res[way] = {"state_mib": round(len(data) / 2**20, 2), "save_s": round(save_s, 2), "load_s": round(load_s, 2),
                    "images_equal": bool(np.array_equal(back.observations.reshape(chw.shape), chw)
                                         and np.array_equal(back.next_observations.reshape(chw.shape), chw)),
                    **report}
    res["state_size_ratio"] = round(res["sb3_replay_buffer"]["state_mib"] / res["sourced_replay_buffer"]["state_mib"],
                                    1)
    return res


if __name__ == "__main__":
    main()
