"""Stable-Baselines3 policies as actors: ``export_actor(model, path)`` writes the deterministic policy of
a trained SB3 model (TD3, SAC, DDPG, PPO, A2C; any image policy) as an actor checkpoint that
:func:`blindsr_gym.agents.load_actor`, ``blindsr-gym upscale --actor`` and ``evaluate --actor`` accept.

    model = TD3("CnnPolicy", env, buffer_size=2_000, gamma=0.0).learn(2_000)
    export_actor(model, "runs/td3/actor.safetensors")      # + actor.json, the model card
    # blindsr-gym upscale photo.png --out sr/ --actor runs/td3/actor.safetensors

The file holds only the tensors the deterministic action needs (no critic, no optimiser) and, as JSON
metadata, how to rebuild the policy: its class and constructor arguments, with classes named as
``module:qualname``. Loading imports classes only from ``stable_baselines3``, ``torch.nn`` and
``blindsr_gym`` and unpickles nothing (an SB3 ``.zip`` is a pickle, which can run code when loaded).

An SB3 image policy reads windows of the size it was trained on (the env's ``lr_size``). A
:class:`SB3Actor` given a larger LR image cuts it into windows of that size on an even grid (at most
``max_windows`` per side, overlapping when the image is not a multiple of the window) and returns the
mean of their actions; a window-sized image is read directly, and a smaller one is refused.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from blindsr_gym.errors import InputError

FORMAT = "blindsr-gym-sb3-actor/1"
TRUSTED = ("stable_baselines3.", "torch.nn.", "blindsr_gym.")
# the parts of each policy type that its deterministic action reads
ACTION_PREFIXES = {"TD3Policy": ("actor.",), "SACPolicy": ("actor.",),
                   "ActorCriticPolicy": ("features_extractor.", "pi_features_extractor.", "mlp_extractor.policy_net.",
                                         "action_net.", "log_std")}


def _policy_kind(policy) -> str:
    for cls in type(policy).__mro__:
        if cls.__name__ in ACTION_PREFIXES:
            return cls.__name__
    raise InputError(f"cannot export a {type(policy).__name__}: supported are SB3's TD3/DDPG, SAC and on-policy "
                     "(PPO, A2C) policies")


def _class_name(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(name: str):
    module, _, qualname = name.partition(":")
    if not (module + ".").startswith(TRUSTED):
        raise InputError(f"the actor names class {name}, outside the packages a checkpoint may name "
                         f"({', '.join(p.rstrip('.') for p in TRUSTED)})")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _encode(value):
    if isinstance(value, type):
        return {"__class__": _class_name(value)}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    raise InputError(f"cannot export a policy argument of type {type(value).__name__} ({value!r})")


def _decode(value):
    if isinstance(value, dict):
        if set(value) == {"__class__"}:
            return _import_class(value["__class__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _space(space) -> dict:
    return {"shape": list(space.shape), "dtype": str(space.dtype),
            "low": float(np.min(space.low)), "high": float(np.max(space.high))}


def _box(d: dict):
    from gymnasium import spaces

    return spaces.Box(d["low"], d["high"], tuple(d["shape"]), np.dtype(d["dtype"]))


class SB3Actor(nn.Module):
    """An SB3 policy's deterministic action as an actor: float NCHW LR in [0, 1] -> actions in [-1, 1]."""

    head_kind = "sb3"

    def __init__(self, policy, max_windows: int = 4):
        super().__init__()
        shape = tuple(policy.observation_space.shape)
        if len(shape) != 3 or 3 not in (shape[0], shape[-1]):
            raise InputError(f"an SB3 actor needs an image policy (3 x H x W or H x W x 3), got observations {shape}")
        self.policy = policy
        self.channels_first = shape[0] == 3
        self.window = shape[1:] if self.channels_first else shape[:2]
        self.code_len = int(policy.action_space.shape[0])
        self.max_windows = max_windows
        self.codec_hash = ""

    def windows(self, h: int, w: int) -> list[tuple[int, int]]:
        """The top-left corners of the windows read from an ``h x w`` image."""
        wh, ww = self.window
        if h < wh or w < ww:
            raise InputError(f"this SB3 actor reads {wh}x{ww} LR windows (its training size); the image is {h}x{w}")

        def starts(n, k):
            count = min(self.max_windows, math.ceil(n / k))
            return [round(i * (n - k) / max(count - 1, 1)) for i in range(count)]

        return [(t, left) for t in starts(h, wh) for left in starts(w, ww)]

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise InputError(f"lr must be float [N, 3, H, W] in [0, 1], got {tuple(lr.shape)}")
        n, (wh, ww) = len(lr), self.window
        corners = self.windows(lr.shape[2], lr.shape[3])
        tiles = torch.cat([lr[:, :, t:t + wh, s:s + ww] for t, s in corners]) * 255  # the policy scales by 1/255
        if not self.channels_first:
            tiles = tiles.permute(0, 2, 3, 1)
        with torch.no_grad():
            actions = self.policy._predict(tiles, deterministic=True).float().clamp(-1, 1)
        return actions.reshape(len(corners), n, -1).mean(0)


def export_actor(model, path: str | Path, codec=None, card: dict | None = None) -> Path:
    """Write ``model``'s deterministic policy (an SB3 algorithm or its ``.policy``) to ``path``
    (``.safetensors``) with a model card beside it. ``codec``: the renderer's codec its actions refer to;
    by default it is read from the model's env (``env.unwrapped.core.renderer.codec``) when there is one."""
    from blindsr_gym.utils import write_checkpoint

    policy = getattr(model, "policy", model)
    kind = _policy_kind(policy)
    if codec is None:
        codec = _env_codec(model)
    params = dict(policy._get_constructor_parameters())
    obs_space, act_space = params.pop("observation_space"), params.pop("action_space")
    for key in ("lr_schedule", "optimizer_class", "optimizer_kwargs", "use_sde"):
        params.pop(key, None)
    if getattr(policy, "use_sde", False):
        raise InputError("policies with generalized state-dependent exploration (use_sde=True) are not supported")
    if act_space.shape != (getattr(codec, "length", act_space.shape[0]),):
        raise InputError(f"the policy acts in {act_space.shape}, the codec has {codec.length} components")
    live = SB3Actor(policy)
    config = {"policy_class": _class_name(type(policy)), "kind": kind, "observation_space": _space(obs_space),
              "action_space": _space(act_space), "kwargs": _encode(params)}
    prefixes = ACTION_PREFIXES[kind]
    # clone: a shared features extractor appears under two names (safetensors refuses shared storage)
    tensors = {k: v.detach().cpu().clone() for k, v in policy.state_dict().items() if k.startswith(prefixes)}
    meta = {"format": FORMAT, "config": json.dumps(config, sort_keys=True),
            "codec_hash": codec.hash if codec is not None else ""}
    card = dict(card or {})
    algo = type(model).__name__ if model is not policy else None
    card.setdefault("kind", "actor")
    card.update(format=FORMAT, algo=algo, policy=config["policy_class"], codec_hash=meta["codec_hash"],
                window=list(live.window), parameters=sum(int(t.numel()) for t in tensors.values()))
    if algo is not None:
        card.setdefault("env_steps", int(getattr(model, "num_timesteps", 0)))
    out = write_checkpoint(path, tensors, meta, card)
    check = load_sb3_actor(*_read(out), out)  # the file must rebuild the same actions
    x = torch.rand(2, 3, *live.window, generator=torch.Generator().manual_seed(0))
    was_training = policy.training
    policy.set_training_mode(False)
    try:
        same = torch.allclose(check(x), live(x.to(policy.device)).cpu(), atol=1e-5)
    finally:
        policy.set_training_mode(was_training)
    if not same:
        raise RuntimeError(f"{out}: the exported actor does not reproduce the policy's actions")
    return out


def _read(path):
    from blindsr_gym.agents import ActorCheckpointError
    from blindsr_gym.utils import read_checkpoint

    return read_checkpoint(path, FORMAT, ActorCheckpointError, "actor")


def _env_codec(model):
    env = getattr(model, "get_env", lambda: None)()
    if env is None:
        return None
    try:
        inner = env.get_attr("unwrapped")[0]
    except Exception:  # an env without gymnasium's attribute access: no codec to record
        return None
    core = getattr(inner, "core", None)
    return getattr(getattr(core, "renderer", None), "codec", None)


def load_sb3_actor(meta: dict, tensors: dict, path: str | Path = "") -> SB3Actor:
    """The :class:`SB3Actor` of an exported checkpoint's ``(metadata, tensors)``, in eval mode."""
    from blindsr_gym.agents import ActorCheckpointError

    try:
        config = json.loads(meta["config"])
        cls = _import_class(config["policy_class"])
        policy = cls(_box(config["observation_space"]), _box(config["action_space"]), lambda _: 0.0,
                     **_decode(config["kwargs"]))
    except (KeyError, TypeError, ValueError, AttributeError, ImportError) as e:
        raise ActorCheckpointError(f"{path}: cannot rebuild the SB3 policy: {e}") from None
    missing, unexpected = policy.load_state_dict(tensors, strict=False)
    prefixes = ACTION_PREFIXES[config["kind"]]
    missing = [k for k in missing if k.startswith(prefixes)]
    if unexpected or missing:
        raise ActorCheckpointError(f"{path}: weights do not fit the policy (missing {missing[:3]}, "
                                   f"unexpected {unexpected[:3]})")
    policy.set_training_mode(False)
    actor = SB3Actor(policy)
    actor.codec_hash = meta.get("codec_hash", "")
    return actor.requires_grad_(False).eval()
