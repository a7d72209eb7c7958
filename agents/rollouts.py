"""Rollouts on the batched env, shared by every agent trainer (our DDPG, Stable-Baselines3) and by the
notebooks: the vector env, a torch actor as a policy, evaluation on fixed seeded episodes, the figures
and pictures logged to TensorBoard under the same tags for every trainer, and the checks of replayed images
drawn again from their episodes' sources."""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import torch

from blindsr_gym.errors import InputError

from .networks import obs_to_tensor

#: a redrawn image whose pixel sum differs from the saved one's by more than this share of its pixels is another
#: image (the dataset changed), not the rounding of another device's Eq. 1 (<= 1 level in ~0.1% of the pixels)
REDRAW_SUM_TOLERANCE = 0.01


def make_vec_env(env_id: str, num_envs: int, **kwargs):
    import gymnasium as gym

    import blindsr_gym  # noqa: F401  (registers the ids)

    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs).unwrapped


def torch_policy(actor: torch.nn.Module):
    """``act(obs uint8 [N, H, W, 3]) -> actions [N, L]`` for a torch actor, deterministic."""
    device = next(actor.parameters()).device

    @torch.no_grad()
    def act(obs):
        return actor(obs_to_tensor(obs, device)).cpu().numpy()

    return act


def evaluate_policy(act, env, seed: int, details: dict | None = None) -> dict[str, float]:
    """One batched step of ``env`` (a BlindSRVectorEnv) on the episodes of ``seed``, with the
    actions of ``act(obs) -> [N, L]``: mean reward, the metric, PSNR against HR, and the error of the
    actions and codes against the true kernel's, and ``width_log_ratio``, the mean log of the width the
    codes spread like over the true one (> 0: wider than the truth). ``details`` (a dict) receives the
    arrays behind them (``obs``, ``actions``, ``rewards``) and ``panels`` of the first episodes, for
    TensorBoard."""
    obs, info = env.reset(seed=seed)
    actions = np.asarray(act(obs), dtype=np.float32)
    _, rewards, _, _, step_info = env.step(actions)
    if details is not None:
        details.update(obs=obs, actions=np.clip(actions, -1, 1), rewards=np.asarray(rewards),
                       panels=env.final_panels(4))
    fi = step_info["final_info"]
    out = {"reward": float(np.mean(rewards)), "reward_positive_frac": float(np.mean(rewards > 0))}
    for name, vals in fi["metric"].items():
        if not name.startswith("_"):
            out[f"metric_{name}"] = float(np.nanmean(vals))
            out[f"metric_{name}_true_kernel"] = float(np.nanmean(fi["baseline"][name]))
    if "psnr" in fi:
        out["psnr"] = float(np.mean(fi["psnr"]))
        out["psnr_true_kernel"] = float(np.mean(fi["psnr_gt"]))
    if "action_gt" in info:
        out["action_l1_error"] = float(np.mean(np.abs(np.clip(actions, -1, 1) - info["action_gt"])))
        codes, codes_gt = fi["code"], info["code_gt"]
        out["code_rel_error"] = float(np.mean(np.linalg.norm(codes - codes_gt, axis=1)
                                              / np.maximum(np.linalg.norm(codes_gt, axis=1), 1e-12)))
        codec = getattr(getattr(env, "core", None), "codec", None)
        if codec is not None:  # which way the actions drift: log of the read width over the true one
            from blindsr_gym.kernels import isotropic_sigma

            w, w_gt = (isotropic_sigma(codec.decode(torch.as_tensor(c, dtype=torch.float32))).numpy()
                       for c in (codes, codes_gt))
            out["width_log_ratio"] = float(np.mean(np.log(np.maximum(w, 1e-6) / np.maximum(w_gt, 1e-6))))
    return out


def eval_media(details: dict, actor=None) -> dict:
    """The histograms and the image of an evaluation (the same tags for DDPG and SB3 runs): the actions,
    the rewards, the widths a sigma-head actor read, and panels of the first episodes (bicubic | SR with
    the action | SR with the true kernel | HR)."""
    out = {"eval/actions": details["actions"].reshape(-1), "eval/rewards": details["rewards"]}
    if actor is not None and getattr(actor, "head_kind", None) == "sigma":
        dev = next(actor.parameters()).device
        with torch.no_grad():
            out["eval/widths"] = actor.sigma(obs_to_tensor(details["obs"], dev)).cpu().numpy()
    return out


def log_eval_media(writer, details: dict, step: int, actor=None, panels: bool = True) -> None:
    """Write :func:`eval_media` and (with ``panels``) the panels to a TensorBoard ``SummaryWriter``."""
    for tag, values in eval_media(details, actor).items():
        writer.add_histogram(tag, values, step)
    if panels:
        writer.add_image("eval/panels", details["panels"], step, dataformats="HWC")


def rollout_logs(rewards, info) -> dict[str, float]:
    """The ``charts/`` figures of one batched step (shared with the SB3 callback)."""
    logs = {"charts/reward": float(np.mean(rewards))}
    fi = info["final_info"]
    if "psnr" in fi:
        logs["charts/psnr"] = float(np.mean(fi["psnr"]))
    for name, vals in fi["metric"].items():
        if not name.startswith("_"):
            logs[f"charts/metric_{name}"] = float(np.nanmean(vals))
    return logs


def image_checks(images: np.ndarray) -> np.ndarray:
    """int64 ``[n, 2]``: each image's CRC-32 and pixel sum, kept when a replay buffer adds it so that an image
    drawn again from its episode's source can be checked (:func:`check_redrawn`)."""
    images = np.asarray(images)
    return np.array([(zlib.crc32(np.ascontiguousarray(im)), int(im.sum(dtype=np.int64))) for im in images],
                    np.int64).reshape(len(images), 2)


def check_redrawn(images: np.ndarray, checks: np.ndarray) -> int:
    """Compare images drawn again from their sources with the :func:`image_checks` saved with them. Returns how
    many are not byte-identical (another device's Eq. 1 rounds differently); raises :class:`InputError` when any
    is another image altogether (the dataset, or the env's draws, changed)."""
    images, checks = np.asarray(images), np.asarray(checks).reshape(-1, 2)
    got = image_checks(images)
    far = np.abs(got[:, 1] - checks[:, 1]) > REDRAW_SUM_TOLERANCE * images[0].size
    if far.any():
        raise InputError(f"{int(far.sum())} of the {len(images)} replayed images drawn again from their sources are "
                         "not the images saved: is the env's dataset (or its kernel family, noise, crop size) the "
                         "one the run was trained on?")
    return int((got[:, 0] != checks[:, 0]).sum())


def warn_inexact(inexact: int, total: int) -> None:
    if inexact:
        warnings.warn(f"{inexact} of the {total} replayed images came back not byte-identical (Eq. 1 on another "
                      "device rounds differently): the resume is not bit for bit", stacklevel=3)
