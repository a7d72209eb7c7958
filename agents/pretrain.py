"""Supervised pre-training of the actor: regress the true kernel's action from the LR image.

The paper pre-trains the kernel predictor before RL. Pairs are synthesised on the fly exactly as
for the renderer (HR crops, kernels from the family, Eq. 1); the target is the true kernel's action
``codec.code_to_action(codec.encode(k))`` and the loss is L1 on actions. (KENet's adaptive attention
loss on decoded kernels joins with the KENet baseline.)

    blindsr-gym pretrain-actor --data ../shared/data/train --out runs/actor_pre --iters 20000
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .networks import Actor

LOSSES = ("l1",)


@dataclass
class PretrainConfig:
    data: str
    out: str
    iters: int = 20_000
    batch: int = 32
    patch: int = 64  # LR size (the env's lr_size)
    lr: float = 1e-4
    scale: int = 4
    family: str = "isotropic"
    loss: str = "l1"
    ckpt_every: int = 500
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES} (KENet's loss arrives with the KENet baseline), "
                             f"got {self.loss!r}")
        for name in ("iters", "batch", "patch", "ckpt_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")


def pretrain(cfg: PretrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume); writes ``OUT/pretrain_state.pt`` and ``OUT/actor.safetensors`` (+ card)."""
    from torch.utils.tensorboard import SummaryWriter

    from blindsr_gym.data import ImageFolder
    from blindsr_gym.kernels import KernelCodec
    from blindsr_gym.renderers.train import SyntheticPairs
    from blindsr_gym.utils import resolve_device

    from . import save_actor

    out = Path(cfg.out)
    state_path = out / "pretrain_state.pt"
    device = resolve_device(cfg.device)
    if resume and not state_path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {state_path}")
    if not resume and state_path.exists():
        raise FileExistsError(f"{state_path} exists; pass --resume or choose another --out")
    codec = KernelCodec.default()
    pairs = SyntheticPairs(ImageFolder(cfg.data, mod=cfg.scale, recursive=True, cache=True), codec, cfg.family,
                           cfg.scale, cfg.patch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        actor = Actor(code_len=codec.length).to(device)
    opt = torch.optim.Adam(actor.parameters(), lr=cfg.lr)
    rng = np.random.default_rng([cfg.seed, 11])
    step, wall = 0, 0.0
    if resume:
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        actor.load_state_dict(st["actor"])
        opt.load_state_dict(st["opt"])
        rng.bit_generator.state = json.loads(st["rng"])
        step, wall = st["step"], st["wall_s"]
    out.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(str(out), purge_step=step if step else None)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.iters, initial=step, desc="pretrain actor")
    t_last = time.perf_counter()
    loss = torch.zeros(())
    while step < cfg.iters:
        lr_img, code, _ = pairs.sample(rng, cfg.batch, device)
        target = codec.code_to_action(code)
        loss = F.l1_loss(actor(lr_img), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        now = time.perf_counter()
        wall += now - t_last
        t_last = now
        writer.add_scalar("losses/action_l1", loss.item(), step)
        if bar is not None:
            bar.update(1)
        if step % cfg.ckpt_every == 0 or step == cfg.iters:
            torch.save({"actor": actor.state_dict(), "opt": opt.state_dict(),
                        "rng": json.dumps(rng.bit_generator.state), "step": step, "wall_s": wall,
                        "config": asdict(cfg)}, state_path.with_suffix(".tmp"))
            state_path.with_suffix(".tmp").replace(state_path)
            card = {"training": {"stage": "supervised pre-training (L1 on actions)", **asdict(cfg),
                                 "iterations": step, "wall_time_s": round(wall, 1), "device": str(device)}}
            save_actor(actor, out / "actor.safetensors", codec=codec, card=card)
            t_last = time.perf_counter()
    if bar is not None:
        bar.close()
    writer.close()
    return {"step": step, "wall_s": wall, "last_loss": float(loss), "out": str(out)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = PretrainConfig(data="", out="")
    p.add_argument("--data", required=True, help="folder of HR images")
    p.add_argument("--out", required=True)
    p.add_argument("--iters", type=int, default=d.iters)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--patch", type=int, default=d.patch, help="LR size")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--family", default=d.family)
    p.add_argument("--ckpt-every", type=int, default=d.ckpt_every)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    cfg = PretrainConfig(data=args.data, out=args.out, iters=args.iters, batch=args.batch, patch=args.patch,
                         lr=args.lr, family=args.family, ckpt_every=args.ckpt_every, seed=args.seed,
                         device=args.device)
    print(json.dumps(pretrain(cfg, resume=args.resume, progress=not args.no_progress)))
    return 0
