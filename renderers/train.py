"""Train a renderer (AMNet, AMNet_L, the AdaIN ablation) on a folder of HR images.

LR inputs are synthesised on the fly (Eq. 1) from kernels drawn from a family, with flips and 90°
rotations; the network sees the true kernel's PCA code. Defaults are the paper's: L1 loss, Adam
2e-4, LR patch 64, batch 64.

Single process::

    blindsr-gym train-renderer --data ../shared/data/train --out runs/amnet

Several processes (DistributedDataParallel; NCCL on GPUs, gloo on CPUs)::

    torchrun --nproc_per_node=2 -m blindsr_gym.renderers.train --data ... --out runs/amnet

``--batch`` is the global batch; each process takes ``batch / world_size`` samples, drawn from its own
random stream (seed + rank). Every ``--ckpt-every`` steps the run writes ``OUT/last.pt`` (weights,
optimiser, every process's random state, wall time) and ``OUT/<arch>.safetensors`` + ``.json`` (the
shippable weights and card). ``--resume`` continues from ``OUT/last.pt`` exactly: the steps after a
resume are the ones the uninterrupted run would have taken. TensorBoard scalars go to ``OUT/tb``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from blindsr_gym.data import ImageFolder
from blindsr_gym.degradation import degrade
from blindsr_gym.errors import InputError
from blindsr_gym.fileio import write_text
from blindsr_gym.kernels import KernelCodec, gaussian8
from blindsr_gym.metrics import psnr
from blindsr_gym.renderers import compiled_blocks
from blindsr_gym.synthesis import SyntheticPairs, augment, widen_kernels  # noqa: F401  (re-exported)
from blindsr_gym.training import (  # noqa: F401  (re-exported)
    DeviceLoss,
    ResumeError,
    Run,
    adam,
    check_resume_config,
    exit_status,
    hardware_string,
    load_state,
    multistep,
    report_stop,
    resolve_amp,
    stop_requested,
    stoppable,
)
from blindsr_gym.utils import resolve_device, to_tensor, weights_digest

#: What ``--resume`` may change besides blindsr_gym.training.RESUME_ALLOWED: a longer run and its lr schedule.
RESUME_ALLOWED = ("iters", "lr_milestones", "lr_gamma")


@dataclass
class TrainConfig:
    data: str
    out: str
    arch: str = "amnet"
    arch_kwargs: dict = field(default_factory=dict)
    scale: int = 4
    patch: int = 64  # LR patch size
    batch: int = 64  # global batch
    lr: float = 2e-4
    lr_milestones: list[int] = field(default_factory=list)  # the learning rate halves at each
    lr_gamma: float = 0.5
    iters: int = 100_000
    family: str = "isotropic"
    noise: float = 0.0  # max noise sigma in 8-bit levels, drawn uniformly per sample
    # robustness to over-estimated kernels: with probability code_blur_p the code shown to the renderer is
    # that of the kernel convolved with a Gaussian of width U(0, code_blur) HR pixels (SyntheticPairs)
    code_blur: float = 0.0
    code_blur_p: float = 0.0
    amp: str = "auto"  # "bf16", "off", or "auto" (bf16 where the hardware runs it fast)
    # AMNet's residual blocks through torch.compile in the training step (renderers.compiled_blocks; validation
    # stays eager, its image sizes vary). How the step runs, not what it computes: a resume may change it
    compile: bool = False
    ckpt_every: int = 500
    val_data: str | None = None
    val_every: int = 1000
    log_every: int = 20
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    # AMGAN fine-tuning (renderers/amgan.py): start from `init` (an AMNet checkpoint). Without `gan`, `init` is
    # a warm start: the weights of a checkpoint of the same architecture, a fresh optimiser, steps from 0.
    gan: bool = False
    init: str | None = None
    w_l1: float = 1.0
    w_percep: float = 1.0
    w_adv: float = 5e-3
    lr_d: float = 1e-4
    vgg_weights: str | None = None
    num_outcomes: int = 51

    def __post_init__(self):
        for name in ("patch", "batch", "iters", "ckpt_every", "val_every", "log_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise InputError(f"{name} must be a positive integer, got {v!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError(f"lr must be a positive number, got {self.lr!r}")
        if self.amp not in ("auto", "bf16", "off"):
            raise InputError(f"amp must be 'auto', 'bf16' or 'off', got {self.amp!r}")
        if self.noise < 0:
            raise InputError(f"noise must be >= 0 (8-bit levels), got {self.noise!r}")
        if not (math.isfinite(self.code_blur) and self.code_blur >= 0):
            raise InputError(f"code_blur must be >= 0 (HR pixels), got {self.code_blur!r}")
        if not 0 <= self.code_blur_p <= 1:
            raise InputError(f"code_blur_p must be a probability in [0, 1], got {self.code_blur_p!r}")
        if self.compile and self.arch == "dan":
            raise InputError("compile runs AMNet's residual blocks through torch.compile; DAN has none")
        if self.code_blur_p > 0 and self.arch == "dan":
            raise InputError("code_blur is for the code-conditioned renderers; DAN estimates its own code")
        if self.gan and not self.init:
            raise InputError("GAN fine-tuning (AMGAN) starts from a trained AMNet: give init=<checkpoint>")


def lr_at(cfg: TrainConfig, step: int, base: float | None = None) -> float:
    """The learning rate for ``step``: ``base * gamma ** (milestones passed)`` (``base``: ``cfg.lr``);
    a pure function of the step."""
    return multistep(cfg.lr if base is None else base, cfg.lr_gamma, cfg.lr_milestones, step)


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------


def validation_set(folder: str, scale: int, kernels: torch.Tensor | None = None):
    """Fixed ``(lr, code, hr)`` triples: every image of ``folder`` with every kernel (default Gaussian8)."""
    source = ImageFolder(folder, mod=scale)
    kernels = gaussian8(scale) if kernels is None else kernels
    codec = KernelCodec.default(kernels.shape[-1])  # the DAN validation ignores the code
    out = []
    for i in range(len(source)):
        hr = to_tensor(source[i])
        for k in kernels:
            out.append((degrade(hr, k, scale), codec.encode(k[None]), hr))
    return out


@torch.no_grad()
def validate(model, pairs, device, with_niqe: bool = False) -> dict[str, float]:
    """Mean PSNR-Y (border 4) over the validation pairs, and NIQE when asked (GAN runs)."""
    from blindsr_gym.metrics import niqe

    was_training = model.training
    model.eval()
    p, q = [], []
    for lr, code, hr in pairs:
        sr = model.super_resolve(lr.to(device)) if getattr(model, "arch", "") == "dan" \
            else model(lr.to(device), code.to(device))
        p.append(psnr(sr, hr.to(device), crop_border=4).item())
        if with_niqe and min(sr.shape[-2:]) >= 192:
            q.append(niqe(sr.float()).item())
    model.train(was_training)
    out = {"psnr_y": float(np.mean(p))}
    if q:
        out["niqe"] = float(np.nanmean(q))
    return out


# ------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def _gather(obj, world: int) -> list:
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


class RendererStep:
    """One optimisation step of a renderer on an ``(lr, code, hr)`` batch: L1 between SR and HR (AMNet,
    AMNet_L, the AdaIN ablation). DAN and AMGAN are the subclasses :class:`DANStep` and :class:`GANStep`;
    each overrides only what differs. ``update`` returns the step's logs (tensors or floats)."""

    loss_name = "L1"

    def __init__(self, net, optimizer, amp: str, device: torch.device, state_path: Path):
        self.net, self.optimizer, self.amp, self.device, self.state_path = net, optimizer, amp, device, state_path
        self.device_loss = DeviceLoss(device, state_path)  # the trainer reads it at log steps and before saves

    def losses(self, lr_img, code, hr):
        """``(sr, loss, logs)`` of the forward pass."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp == "bf16"):
            sr = self.net(lr_img, code)
        l1 = F.l1_loss(sr.float(), hr)
        return sr, l1, {"l1": l1.detach()}

    def extra_loss(self, sr, hr, loss, logs, step):
        """Terms added to the loss before the backward pass (none here)."""
        return loss

    def after_step(self, sr, hr, logs) -> None:
        """What runs after the optimiser's step (nothing here)."""

    def update(self, lr_img, code, hr, step: int) -> dict:
        sr, loss, logs = self.losses(lr_img, code, hr)
        loss = self.extra_loss(sr, hr, loss, logs, step)
        self.device_loss.add(loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.after_step(sr, hr, logs)
        return logs


class DANStep(RendererStep):
    """DAN (Luo et al.): L1 on the SR and on the estimated code of every loop."""

    loss_name = "L1 on the SR + L1 on the code of every loop"

    def losses(self, lr_img, code, hr):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp == "bf16"):
            srs, codes = self.net(lr_img)
        l1 = sum(F.l1_loss(x.float(), hr) for x in srs) / len(srs)
        code_l1 = sum(F.l1_loss(c.float(), code) for c in codes) / len(codes)
        return srs[-1], l1 + code_l1, {"l1": l1.detach(), "code_l1": code_l1.detach()}


class GANStep(RendererStep):
    """AMGAN: the L1 step plus RealnessGAN's adversarial term (and the perceptual one when VGG19 weights
    are given), then a discriminator step."""

    def __init__(self, net, optimizer, amp, device, state_path, gan: _GanParts, cfg: TrainConfig):
        super().__init__(net, optimizer, amp, device, state_path)
        self.gan, self.cfg = gan, cfg
        self.loss_name = gan.loss_name

    def extra_loss(self, sr, hr, loss, logs, step):
        for g in self.gan.opt_d.param_groups:
            g["lr"] = lr_at(self.cfg, step, self.cfg.lr_d)
        loss, more = self.gan.generator_loss(sr, hr, loss, self.amp)
        logs.update(more)
        return loss

    def after_step(self, sr, hr, logs) -> None:
        logs["d_loss"] = self.gan.discriminator_step(sr.detach(), hr, self.amp)


def _init_weights(init: str, arch: str, codec: KernelCodec) -> tuple[dict, dict, dict]:
    """``(weights, network config, card)`` of ``--init``: a renderer checkpoint or shipped name (its model card),
    or another run's resume state (``last.pt``: its weights, and a card made from its stored setting), so that a
    run can go on at another batch or crop size from where a run stopped, with no weights file in between."""
    from blindsr_gym.renderers import build_renderer, load_renderer, read_model_card

    if not str(init).endswith(".pt"):
        start = load_renderer(init, arch=arch, codec=codec)
        return start.state_dict(), start.config, read_model_card(init)
    state = load_state(init)
    saved = state.get("config", {})
    if saved.get("arch") != arch or saved.get("gan"):
        raise InputError(f"--init {init}: the resume state of a {saved.get('arch')!r}"
                         f"{' GAN' if saved.get('gan') else ''} run; this run trains {arch!r}")
    net = build_renderer(arch, codec=codec, scale=saved.get("scale", 4), **saved.get("arch_kwargs", {}))
    card = {"training": {"resume_state": str(init), "data": saved.get("data"), "iterations": state["step"],
                         "batch": saved.get("batch"), "lr_patch": saved.get("patch"), "lr": saved.get("lr"),
                         "kernel_family": saved.get("family"), "wall_time_s": round(float(state.get("wall_s", 0)), 1),
                         **({"init_training": state["init_card"]} if state.get("init_card") else {})}}
    return state["model"], net.config, card


@stoppable
def train(cfg: TrainConfig, resume: bool = False, progress: bool = True, time_budget: float | None = None) -> dict:
    """Run (or resume) training; returns a summary dict. Works under torchrun or as one process.
    ``time_budget`` (seconds): stop at the first checkpoint after it has passed (``--resume`` goes on).
    Ctrl-C or SIGTERM: a checkpoint at the step under way, then stop (``stopped_by`` names the signal; under
    torchrun the processes agree at the next log step)."""
    from blindsr_gym.renderers import build_renderer, save_renderer

    rank, world, local = _dist_info()
    if cfg.batch % world:
        raise InputError(f"global batch {cfg.batch} is not divisible by the {world} processes")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    out = Path(cfg.out)
    # older runs lack newer fields; the process count is checked on its own, with its own message
    run = Run(out, "last.pt", dict(asdict(cfg), world=world), ("world", "compile", *RESUME_ALLOWED), resume=resume,
              defaults=asdict(TrainConfig(data="", out="")), writes=rank == 0, time_budget=time_budget)
    state, state_path = run.state, run.state_path
    if state is not None and state["config"].get("world", world) != world:
        raise ResumeError(f"--resume: the run used {state['config']['world']} processes, this one {world}; resume "
                          "with the same to continue it exactly")

    # DAN estimates its own 10-D code; the renderers are conditioned on the 15-D codec's
    codec = KernelCodec.default(21, 10 if cfg.arch == "dan" else 15)
    if cfg.gan and cfg.arch == "dan":
        raise InputError("GAN fine-tuning is for the AMNet renderers, not DAN")
    init_card = None
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, global RNG untouched
        torch.manual_seed(cfg.seed)
        model = build_renderer(cfg.arch, codec=codec, scale=cfg.scale, **cfg.arch_kwargs).to(device)
        gan = _GanParts(cfg, device) if cfg.gan else None
    # a resumed run has its weights and the init's card in its state, so the init file need not be there
    # (a GPU lease leaves it behind to fit the resume state in)
    if cfg.init and state is None:
        weights, config, init_card = _init_weights(cfg.init, cfg.arch, codec)
        if config != model.config:
            raise InputError(f"--init {cfg.init} has config {config}, the run wants {model.config}")
        model.load_state_dict(weights)
    # NHWC convolutions on every device, as the env renders: oneDNN's on the CPU, cuDNN's tensor-core kernels
    # on a GPU (benchmarks/train_speed.py times both layouts side by side)
    model = model.to(memory_format=torch.channels_last)
    optimizer = adam(model.parameters(), cfg.lr, device)
    rng = np.random.default_rng([cfg.seed, rank])
    step = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        rng.bit_generator.state = json.loads(state["rng"][rank])
        if gan is not None:
            gan.load_state_dict(state["gan"])
        init_card = state.get("init_card", init_card)  # older warm starts saved none
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    if gan is not None:
        gan.wrap(world)

    amp = resolve_amp(cfg.amp, device)
    if cfg.arch == "dan":
        updater = DANStep(ddp, optimizer, amp, device, state_path)
    elif gan is not None:
        updater = GANStep(ddp, optimizer, amp, device, state_path, gan, cfg)
    else:
        updater = RendererStep(ddp, optimizer, amp, device, state_path)

    source = ImageFolder(cfg.data, mod=cfg.scale, recursive=True, cache=True)
    pairs = SyntheticPairs(source, codec, cfg.family, cfg.scale, cfg.patch, cfg.noise,
                           code_blur=cfg.code_blur, code_blur_p=cfg.code_blur_p)
    if pairs.skipped and rank == 0:
        print(f"note: {pairs.skipped} of {len(source)} training images are smaller than "
              f"{cfg.patch * cfg.scale} px and are skipped", file=sys.stderr)
    val = validation_set(cfg.val_data, cfg.scale) if (cfg.val_data and rank == 0) else None

    writer = run.writer(step, "tb")
    if rank == 0:
        write_text(out / "config.json", json.dumps(dict(asdict(cfg), world=world, amp=amp), indent=2) + "\n")
    bar = run.progress(progress, cfg.iters, step, f"train {cfg.arch}")
    hardware = hardware_string(device) + (f" x{world} processes" if world > 1 else "")

    def checkpoint():
        rng_states = _gather(json.dumps(rng.bit_generator.state), world)
        if rank == 0:
            blob = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                    "rng": rng_states}
            if gan is not None:
                blob["gan"] = gan.state_dict()
            if cfg.init:  # the init's card, so that a resumed run's card still carries init_training
                blob["init_card"] = init_card
            run.save_state(blob)
            export()

    def export():  # the weights and card of the current step (rank 0)
        card = {"training": {"data": str(cfg.data), "images": len(source), "iterations": step,
                             "batch": cfg.batch, "lr_patch": cfg.patch, "loss": updater.loss_name,
                             "optimizer": "Adam",
                             "lr": cfg.lr, "lr_milestones": cfg.lr_milestones, "kernel_family": cfg.family,
                             "noise_max": cfg.noise, "code_blur": cfg.code_blur,
                             "code_blur_p": cfg.code_blur_p, "precision": amp,
                             **run.card(device, hardware)}}
        name = cfg.arch
        if gan is not None:
            card["training"].update(gan.card(), init=str(cfg.init), init_training=init_card)
            name = f"{cfg.arch}_gan"
        elif cfg.init:  # a warm start: this card's iterations and wall time are this run's alone
            card["training"].update(init=str(cfg.init), init_training=init_card,
                                    warm_start="weights of init, a fresh Adam; iterations count from 0")
        save_renderer(model, out / f"{name}.safetensors", card)

    last_val, stopped, stopped_by = None, False, None
    updater.device_loss.step = step  # a resumed run's steps so far were read before their save
    run.restart_clock()
    per_rank = cfg.batch // world
    if state is not None and step >= cfg.iters and rank == 0:
        # a finished run resumed as it stands: nothing to train and its state is left as it is, but its weights
        # and card are written again from it (an export that was lost, or the card of the state's own step)
        export()
    while step < cfg.iters:
        for g in optimizer.param_groups:
            g["lr"] = lr_at(cfg, step)
        lr_img, code, hr = pairs.sample(rng, per_rank, device)
        lr_img = lr_img.contiguous(memory_format=torch.channels_last)
        with compiled_blocks(cfg.compile):
            logs = updater.update(lr_img, code, hr, step)
        step += 1
        run.tick()
        stop = stop_requested()  # Ctrl-C or SIGTERM: a checkpoint at this step, then stop
        if world > 1:  # every process stops at the same step: they agree at log steps (one collective)
            stop = None if step % cfg.log_every else next((s for s in _gather(stop, world) if s), None)
        save_due = step % cfg.ckpt_every == 0 or step == cfg.iters or stop is not None
        if step % cfg.log_every == 0 or save_due:
            updater.device_loss.read()
        if rank == 0:
            if step % cfg.log_every == 0:
                for k, v in logs.items():
                    writer.add_scalar(f"train/{k}", float(v), step)
                writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], step)
            if val is not None and step % cfg.val_every == 0:
                last_val = validate(model, val, device, with_niqe=gan is not None)
                for k, v in last_val.items():
                    writer.add_scalar(f"val/{k}", v, step)
                run.restart_clock()  # validation time is not training time
            if bar is not None:
                bar.update(1)
                if step % cfg.log_every == 0:  # the loss is read from the device only at a log step
                    post = {"l1": f"{float(logs['l1']):.4f}"}
                    if last_val:
                        post["val"] = f"{last_val['psnr_y']:.2f}"
                    bar.set_postfix(post, refresh=False)
        if save_due:
            checkpoint()
            run.restart_clock()
            if stop is not None:
                stopped_by = stop
                break
            if step < cfg.iters and any(_gather(run.out_of_time(), world)):  # every process stops together
                stopped = True
                break
    run.close()
    if bar is not None:
        bar.close()
    prints = _gather(weights_digest(model), world)
    if len(set(prints)) != 1:
        raise RuntimeError(f"DDP replicas diverged: weight fingerprints {prints}")
    return {"step": step, "wall_s": run.wall, "val_psnr": last_val, "out": str(out), "world": world,
            "replica_fingerprints": prints, "stopped_by_time_budget": stopped, "stopped_by": stopped_by,
            "state": str(run.state_path)}


class _GanParts:
    """Discriminator, its optimiser and the AMGAN losses (RealnessGAN + optional perceptual)."""

    def __init__(self, cfg: TrainConfig, device: torch.device):
        from .amgan import Discriminator, PerceptualLoss, RealnessLoss

        self.cfg = cfg
        self.d = Discriminator(cfg.num_outcomes).to(device)
        self.opt_d = adam(self.d.parameters(), cfg.lr_d, device)
        self.realness = RealnessLoss(cfg.num_outcomes).to(device)
        self.percep = PerceptualLoss(cfg.vgg_weights).to(device) if (cfg.vgg_weights and cfg.w_percep) else None
        self.ddp_d = self.d
        terms = [f"{cfg.w_l1:g}*L1"]
        if self.percep is not None:
            terms.append(f"{cfg.w_percep:g}*VGG19-conv5_4")
        terms.append(f"{cfg.w_adv:g}*RealnessGAN")
        self.loss_name = " + ".join(terms)

    def wrap(self, world: int):
        if world > 1:
            self.ddp_d = torch.nn.parallel.DistributedDataParallel(self.d)

    def generator_loss(self, sr, hr, l1, amp):
        for p in self.d.parameters():
            p.requires_grad_(False)
        with torch.autocast(sr.device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            logits = self.d(torch.cat([hr, sr]))  # the plain module: no DDP reduction for G's step
        for p in self.d.parameters():
            p.requires_grad_(True)
        real, fake = logits.float().chunk(2)
        adv = self.realness.generator(real, fake)
        loss = self.cfg.w_l1 * l1 + self.cfg.w_adv * adv
        logs = {"g_adv": adv.detach()}
        if self.percep is not None:
            with torch.autocast(sr.device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
                per = self.percep(sr, hr).float()
            loss = loss + self.cfg.w_percep * per
            logs["g_percep"] = per.detach()
        return loss, logs

    def discriminator_step(self, sr, hr, amp) -> torch.Tensor:
        with torch.autocast(sr.device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            logits = self.ddp_d(torch.cat([hr, sr]))
        real, fake = logits.float().chunk(2)
        loss = self.realness.discriminator(real, fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return loss.detach()  # read (float) only when logged

    def state_dict(self):
        return {"d": self.d.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, sd):
        self.d.load_state_dict(sd["d"])
        self.opt_d.load_state_dict(sd["opt_d"])

    def card(self) -> dict:
        c = self.cfg
        return {"gan": {"adversarial": "RealnessGAN (Xiangli et al. 2020)", "num_outcomes": c.num_outcomes,
                        "w_l1": c.w_l1, "w_adv": c.w_adv, "lr_d": c.lr_d,
                        "perceptual": (f"VGG19 conv5_4, weight {c.w_percep:g}, from {Path(c.vgg_weights).name}"
                                       if self.percep is not None else
                                       "off: no VGG19 ImageNet weights file was given (--vgg-weights)")}}


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig(data="", out="")
    p.add_argument("--data", required=True, help="folder of HR training images (searched recursively)")
    p.add_argument("--out", required=True, help="run folder: checkpoints, model card, TensorBoard logs")
    p.add_argument("--arch", default=d.arch, choices=["amnet", "amnet_l", "dan"],
                   help="dan: trained end to end with L1 on the SR and the code of every loop")
    p.add_argument("--num-blocks", type=int, default=None, help="AMRBs (default: 16 for amnet, 32 for amnet_l)")
    p.add_argument("--modulation", default="am", choices=["am", "adain"], help="AMLayer (Eq. 7) or AdaIN (Eq. 4)")
    p.add_argument("--scale", type=int, default=d.scale, choices=[2, 3, 4], help="upscaling factor")
    p.add_argument("--patch", type=int, default=d.patch, help="LR patch size (paper: 64)")
    p.add_argument("--batch", type=int, default=d.batch, help="global batch (paper: 64)")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (paper: 2e-4)")
    p.add_argument("--lr-milestones", type=int, nargs="*", default=[],
                   help="steps at which the lr is multiplied by --lr-gamma")
    p.add_argument("--lr-gamma", type=float, default=d.lr_gamma, help="lr factor at each --lr-milestones step")
    p.add_argument("--iters", type=int, default=d.iters, help="training steps in all (a resume may raise it)")
    p.add_argument("--family", default=d.family, choices=["isotropic", "anisotropic", "dan_setting2"],
                   help="kernel family of the training pairs")
    p.add_argument("--noise", type=float, default=d.noise, help="max noise sigma (8-bit levels)")
    p.add_argument("--code-blur", type=float, default=d.code_blur,
                   help="robustness to over-estimated kernels: the code shown is that of the kernel blurred by a "
                        "Gaussian of width U(0, this) HR pixels (with probability --code-blur-p)")
    p.add_argument("--code-blur-p", type=float, default=d.code_blur_p, help="probability of --code-blur per sample")
    p.add_argument("--amp", default=d.amp, choices=["auto", "bf16", "off"],
                   help="bf16 autocast (auto: where the hardware runs it fast)")
    p.add_argument("--compile", action="store_true",
                   help="AMNet's residual blocks through torch.compile in the training step (fused elementwise "
                        "work; the first step compiles for some seconds; a resume may turn it on or off)")
    p.add_argument("--ckpt-every", type=int, default=d.ckpt_every, help="steps between checkpoints")
    p.add_argument("--val-data", default=None, help="held-out HR folder; validated with Gaussian8 kernels")
    p.add_argument("--val-every", type=int, default=d.val_every, help="steps between validations on --val-data")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the weights and the training pairs")
    p.add_argument("--device", default=d.device, help="'cpu', 'cuda' or 'auto'")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                   help="stop at the first checkpoint after this many minutes (a GPU lease); --resume goes on")
    g = p.add_argument_group("AMGAN fine-tuning")
    g.add_argument("--gan", action="store_true", help="fine-tune --init with L1 + perceptual + RealnessGAN losses")
    g.add_argument("--init", default=None,
                   help="checkpoint (.safetensors), shipped name or another run's resume state (last.pt) to start "
                        "from: the AMNet that --gan fine-tunes, or without --gan a warm start of the same "
                        "architecture (its weights, a fresh Adam)")
    g.add_argument("--w-l1", type=float, default=d.w_l1, help="weight of the L1 term")
    g.add_argument("--w-percep", type=float, default=d.w_percep, help="weight of the VGG perceptual term")
    g.add_argument("--w-adv", type=float, default=d.w_adv, help="weight of the adversarial (RealnessGAN) term")
    g.add_argument("--lr-d", type=float, default=d.lr_d, help="discriminator learning rate")
    g.add_argument("--vgg-weights", default=None,
                   help="local torchvision vgg19 state dict; without it the perceptual term is off")
    g.add_argument("--num-outcomes", type=int, default=d.num_outcomes, help="RealnessGAN outcomes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    arch_kwargs = {} if args.modulation == "am" else {"modulation": args.modulation}
    if args.num_blocks is not None:
        arch_kwargs["num_blocks"] = args.num_blocks
    return TrainConfig(data=args.data, out=args.out, arch=args.arch, arch_kwargs=arch_kwargs, scale=args.scale,
                       patch=args.patch, batch=args.batch, lr=args.lr, lr_milestones=sorted(args.lr_milestones),
                       lr_gamma=args.lr_gamma, iters=args.iters, family=args.family, noise=args.noise, amp=args.amp,
                       code_blur=args.code_blur, code_blur_p=args.code_blur_p, compile=args.compile,
                       ckpt_every=args.ckpt_every,
                       val_data=args.val_data, val_every=args.val_every,
                       seed=args.seed, device=args.device, threads=args.threads, gan=args.gan, init=args.init,
                       w_l1=args.w_l1, w_percep=args.w_percep, w_adv=args.w_adv, lr_d=args.lr_d,
                       vgg_weights=args.vgg_weights, num_outcomes=args.num_outcomes)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*TypedStorage.*")
        summary = train(cfg, resume=args.resume, progress=not args.no_progress,
                        time_budget=args.time_budget * 60 if args.time_budget else None)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary))
        report_stop(summary["stopped_by"], summary["step"], summary["state"])
    if dist.is_initialized():
        # DDP's reducer and gloo's pending work are freed now, while the interpreter is alive: left to the
        # collector at exit, their destruction can abort a finished run with "terminate called without an
        # active exception" (pytorch/pytorch#179291 describes the mechanism). Then every rank reaches the
        # barrier before any tears gloo down: destroying the group while the other rank's last collective
        # is still in flight aborted ~1 run in 8
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
    return exit_status(summary["stopped_by"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m blindsr_gym.renderers.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
