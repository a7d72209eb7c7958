"""Policies and their training (installed as ``blindsr_gym.agents``).

``load_actor(name_or_path)`` returns a frozen kernel predictor: float NCHW LR in [0, 1] -> actions in
[-1, 1]^15; the renderer's ``codec.action_to_code`` turns them into codes. Checkpoints are
``.safetensors`` files whose metadata hold the actor's configuration and the hash of the codec its
actions refer to, with a model card ``.json`` next to them. A Stable-Baselines3 model exported with
:func:`blindsr_gym.agents.sb3_actor.export_actor` loads the same way (an :class:`~.sb3_actor.SB3Actor`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from blindsr_gym.errors import InputError

from .networks import Actor, Critic, SelfEnsemble, obs_to_tensor

__all__ = ["Actor", "Critic", "SelfEnsemble", "obs_to_tensor", "load_actor", "save_actor", "save_module",
           "SHIPPED_ACTORS", "DEFAULT_PSNR_ACTOR", "DEFAULT_NIQE_ACTOR", "ActorCheckpointError"]

FORMAT = "blindsr-gym-actor/1"
SHIPPED_ACTORS = ("actor_psnr_x4", "actor_niqe_x4", "actor_niqe2_x4", "actor_niqe3_x4", "actor_niqe4_x4",
                  "actor_psnr_rl_x4", "actor_psnr_rl2_x4")
#: the actors the package uses unless told otherwise: with AMNet (``amnet-rl``: evaluate, upscale, the demo)
#: and with AMGAN (``amgan-rl``: evaluate, and upscale with amgan_x4; upscale's own amgan2_x4 has its own
#: actor, ``upscale.GAN_ACTORS``); each chosen on Set14 (checkpoints/README.md says how)
DEFAULT_PSNR_ACTOR = "actor_psnr_x4"
DEFAULT_NIQE_ACTOR = "actor_niqe3_x4"


class ActorCheckpointError(InputError):
    """An actor checkpoint that is missing, malformed, or made for another codec."""


def save_module(module: torch.nn.Module, path: str | Path, fmt: str, codec=None, card: dict | None = None) -> Path:
    """Write a network with a ``config`` dict to ``path`` (``.safetensors``, metadata ``format=fmt``,
    its config and the codec hash) and its model card (``.json``) next to it."""
    from blindsr_gym.utils import write_checkpoint

    meta = {"format": fmt, "config": json.dumps(module.config, sort_keys=True),
            "codec_hash": codec.hash if codec is not None else ""}
    card = dict(card or {})
    card.update(config=module.config, codec_hash=meta["codec_hash"],
                parameters=sum(p.numel() for p in module.parameters()))
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    return write_checkpoint(path, tensors, meta, card)


def save_actor(actor: Actor, path: str | Path, codec=None, card: dict | None = None) -> Path:
    """Write ``actor`` to ``path`` (``.safetensors``) and its model card next to it."""
    return save_module(actor, path, FORMAT, codec=codec, card=card)


def _resolve(name_or_path) -> Path:
    from blindsr_gym.utils import resolve_checkpoint

    return resolve_checkpoint(name_or_path, "blindsr_gym.agents", SHIPPED_ACTORS, ActorCheckpointError, "actor")


def load_actor(name_or_path, device: str | torch.device | None = None, codec=None) -> torch.nn.Module:
    """A frozen actor in eval mode (an :class:`Actor`, or an ``SB3Actor`` for an exported SB3 policy);
    ``codec`` (optional) must be the one it was trained with."""
    from blindsr_gym.utils import read_checkpoint, resolve_device

    from .sb3_actor import FORMAT as SB3_FORMAT
    from .sb3_actor import load_sb3_actor

    path = _resolve(name_or_path)
    meta, tensors = read_checkpoint(path, (FORMAT, SB3_FORMAT), ActorCheckpointError, "actor")
    if codec is not None and meta.get("codec_hash") and meta["codec_hash"] != codec.hash:
        raise ActorCheckpointError(f"{path}: actor was trained for codec {meta['codec_hash']}, not {codec.hash}")
    if meta["format"] == SB3_FORMAT:
        return load_sb3_actor(meta, tensors, path).to(resolve_device(device if device is not None else "cpu"))
    actor = Actor(**json.loads(meta["config"]))
    try:
        actor.load_state_dict(tensors)
    except RuntimeError as e:
        raise ActorCheckpointError(f"{path}: weights do not fit the actor configuration: {e}") from None
    actor.codec_hash = meta.get("codec_hash", "")
    actor.requires_grad_(False).eval()
    return actor.to(resolve_device(device if device is not None else "cpu"))
