"""Non-blind SR networks conditioned on a kernel code (installed as ``blindsr_gym.renderers``).

``build_renderer(arch)`` makes an untrained network, ``load_renderer(name_or_path)`` a frozen, trained
one. Every renderer has ``forward(lr, code)`` (LR float NCHW in [0, 1], code ``[N, L]``, SR in
[0, 1]), ``.codec`` (the KernelCodec its codes come from) and ``.scale``.

Checkpoint format: one ``.safetensors`` file holding the weights, the codec's arrays and, in its
metadata, the architecture, its keyword arguments and the codec hash; a model card ``.json`` of the
same stem sits next to it. Loading checks all of them.

``with compiled_blocks(): ...`` runs AMNet's residual blocks through ``torch.compile`` (opt-in; the env's
``compile=True`` and the trainers' ``--compile`` use it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from blindsr_gym.errors import InputError
from blindsr_gym.kernels import KernelCodec

from .amnet import AMNet, amnet, amnet_l, compiled_blocks
from .bicubic import BicubicRenderer
from .dan import DAN

__all__ = ["ARCHS", "SHIPPED", "build_renderer", "load_renderer", "save_renderer", "read_model_card",
           "compiled_blocks", "AMNet", "BicubicRenderer", "DAN", "RendererCheckpointError"]

FORMAT = "blindsr-gym-renderer/1"
ARCHS = {"amnet": amnet, "amnet_l": amnet_l, "bicubic": BicubicRenderer, "dan": DAN}
# amnet2_x4: amnet_x4's run continued to 27,250 iterations; amgan2_x4: AMGAN from it; amnet_robust_x4 and
# amnet_robust2_x4: amnet_x4 and amnet2_x4 fine-tuned to expect over-estimated widths; amnet_adain_x4: Table 4's
# ablation
SHIPPED = ("amnet_x4", "amnet2_x4", "amnet_robust_x4", "amnet_robust2_x4", "amgan_x4", "amgan2_x4", "dan_x4",
           "amnet_adain_x4")
_CODEC_KEYS = ("mean", "components", "code_low", "code_high")


class RendererCheckpointError(InputError):
    """A renderer checkpoint that is missing, malformed, or does not match what was asked for."""


def build_renderer(arch: str, codec: KernelCodec | None = None, **kwargs) -> nn.Module:
    """An untrained renderer: ``"amnet"`` (16 AMRBs), ``"amnet_l"`` (32) or the ``"bicubic"`` fake.

    ``kwargs`` go to the constructor (``scale``, ``modulation="adain"``, ...); ``codec`` defaults to
    the shipped isotropic codec.
    """
    if arch not in ARCHS:
        raise InputError(f"unknown renderer architecture {arch!r}; choose one of {sorted(ARCHS)}")
    model = ARCHS[arch](codec=codec, **kwargs)
    model.arch = arch
    return model


def save_renderer(model: nn.Module, path: str | Path, card: dict | None = None) -> Path:
    """Write ``model`` to ``path`` (``.safetensors``) and its model card to ``path.with_suffix('.json')``."""
    from blindsr_gym.utils import write_checkpoint

    path = Path(path)
    if path.suffix != ".safetensors":
        raise InputError(f"renderer checkpoints are .safetensors files, got {path}")
    arch = getattr(model, "arch", None)
    if arch not in ARCHS:
        raise InputError(f"model has no known .arch ({arch!r}); build it with build_renderer")
    codec: KernelCodec = model.codec
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for key in _CODEC_KEYS:
        tensors[f"codec.{key}"] = torch.from_numpy(np.ascontiguousarray(getattr(codec, key)))
    meta = {"format": FORMAT, "arch": arch, "config": json.dumps(model.config, sort_keys=True),
            "codec_hash": codec.hash, "codec_meta": json.dumps(codec.meta, sort_keys=True, default=str)}
    card = dict(card or {})
    card.update(arch=arch, config=model.config, codec_hash=codec.hash,
                parameters=sum(p.numel() for p in model.parameters()))
    return write_checkpoint(path, tensors, meta, card)


def _resolve(name_or_path: str | Path) -> Path:
    from blindsr_gym.utils import resolve_checkpoint

    return resolve_checkpoint(name_or_path, "blindsr_gym.renderers", SHIPPED, RendererCheckpointError, "renderer")


def load_renderer(name_or_path: str | Path, device: str | torch.device | None = None,
                  arch: str | None = None, codec: KernelCodec | None = None) -> nn.Module:
    """A frozen renderer in eval mode from a shipped name (``"amnet_x4"``, ``"amgan_x4"``) or a path.

    ``arch`` / ``codec``: when given, the checkpoint must have been saved with this architecture /
    a codec with this hash, otherwise :class:`RendererCheckpointError`. ``device``: ``"auto"`` picks
    CUDA when present; default CPU.
    """
    from blindsr_gym.utils import read_checkpoint, resolve_device

    path = _resolve(name_or_path)
    meta, tensors = read_checkpoint(path, FORMAT, RendererCheckpointError, "renderer")
    saved_arch = meta.get("arch")
    if saved_arch not in ARCHS:
        raise RendererCheckpointError(f"{path}: unknown architecture {saved_arch!r}")
    if arch is not None and arch != saved_arch:
        raise RendererCheckpointError(f"{path}: checkpoint holds a {saved_arch!r} renderer, not {arch!r}")
    try:
        ckpt_codec = KernelCodec(*(tensors.pop(f"codec.{k}").numpy() for k in _CODEC_KEYS),
                                 meta=json.loads(meta.get("codec_meta", "{}")))
    except KeyError as e:
        raise RendererCheckpointError(f"{path}: the kernel codec is missing ({e})") from None
    if ckpt_codec.hash != meta.get("codec_hash"):
        raise RendererCheckpointError(
            f"{path}: codec hash mismatch: metadata says {meta.get('codec_hash')}, arrays give {ckpt_codec.hash}")
    if codec is not None and codec.hash != ckpt_codec.hash:
        raise RendererCheckpointError(
            f"{path}: renderer was trained with codec {ckpt_codec.hash}, not the given codec {codec.hash}")
    config = json.loads(meta["config"])
    model = build_renderer(saved_arch, codec=ckpt_codec, **config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise RendererCheckpointError(f"{path}: weights do not fit the {saved_arch!r} architecture: {e}") from None
    model.requires_grad_(False)
    model.eval()
    model.checkpoint_path = path
    return model.to(resolve_device(device if device is not None else "cpu"))


def read_model_card(name_or_path: str | Path) -> dict:
    """The JSON model card next to a renderer checkpoint (empty dict when there is none)."""
    card = _resolve(name_or_path).with_suffix(".json")
    return json.loads(card.read_text()) if card.is_file() else {}
