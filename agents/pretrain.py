"""Supervised kernel estimation: pre-training the actor, and training the KENet baseline.

The paper pre-trains the kernel predictor before RL. Pairs are synthesised on the fly exactly as
for the renderer (HR crops, kernels from the family, Eq. 1). Losses:

* ``l1`` (actor): L1 between the action and the true kernel's action
  ``codec.code_to_action(codec.encode(k))``;
* ``code`` (actor): squared error between the actor's code ``codec.action_to_code(action)`` and the true
  code ``codec.encode(k)``, summed over components and divided by ``||k||^2``. The codec is a PCA with
  orthonormal rows, so this is the relative squared L2 error of the decoded kernel within the codec's
  subspace (the un-normalised one is dominated by the narrow kernels, whose energy is ~100x that of
  Gaussian8's). It weighs the components by how much of the kernel they carry (the leading ones
  most), where ``l1`` weighs all 15 box-normalised actions alike, so it leaves the trailing actions
  free, and AMNet reads those too: a following ``l1`` stage (``--init``) would have to fit them (3,000 CPU
  iterations of ``code`` alone fell short: docs/experiments/2026-11-22_amnet_reads_every_component.md);
* ``att`` (actor): KENet's adaptive attention loss between the decoded kernel
  ``codec.decode(codec.action_to_code(action))`` and the true kernel (:mod:`agents.kenet`);
* ``sr`` (actor): L1 between the HR crop and the frozen renderer's SR image
  ``G(LR, codec.action_to_code(action))`` -- the gradient of a PSNR-like reward through a differentiable
  renderer, i.e. the non-RL upper bound for AMNet-RL and a pre-training that optimises what AMNet
  actually reads. (Regressing the 15 box-normalised actions, ``l1``, is hard for the isotropic family:
  its trailing components oscillate across the whole box as sigma moves:
  docs/experiments/2026-11-22_kernel_precision.md.)
* ``sigma`` (actor with ``--head sigma``, isotropic family): L1 on log sigma between the actor's width
  and the true kernel's (recovered from its second moment), over-estimates weighted by
  ``--over-weight`` (AMNet forgives an under-estimated sigma far more than an over-estimated one);
* ``att`` (KENet, the default) or ``l1`` (KENet): on the estimated kernel.

``--init`` starts from a checkpoint of the same model (e.g. ``sr`` after ``l1``).

With ``--val-data`` every checkpoint also scores a fixed validation set (every image of the folder
with every Gaussian8 kernel): the mean kernel PSNR (KENet's Table 3 figure) goes to TensorBoard and
the model card.

    blindsr-gym pretrain-actor --data ../shared/data/train --out runs/actor_pre --iters 20000
    blindsr-gym train-kenet --data ../shared/data/train --out runs/kenet_x4 --val-data ../shared/data/test/Set5
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from blindsr_gym.errors import InputError
from blindsr_gym.kernels import isotropic_sigma
from blindsr_gym.training import DeviceLoss, adam, decayed, exit_status, report_stop, stop_requested, stoppable

from .kenet import KENet, adaptive_attention_loss, kernel_psnr
from .networks import Actor

MODELS = ("actor", "kenet")
LOSSES = ("l1", "code", "att", "sr", "sigma")


#: What ``--resume`` may change besides blindsr_gym.training.RESUME_ALLOWED: a longer run and its lr decay
#: (actor_psnr_x4 was continued with a new --lr-decay from step 4,500).
RESUME_ALLOWED = ("iters", "lr_decay", "lr_decay_from")
#: steps between the logged losses (each the mean over its interval)
LOG_EVERY = 20


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
    model: str = "actor"
    val_data: str | None = None
    amp: str = "auto"  # bf16 autocast where the hardware runs it fast (as the renderer trainer)
    ckpt_every: int = 500
    seed: int = 0
    device: str = "auto"
    renderer: str = "amnet_x4"  # the frozen renderer of the "sr" loss
    init: str | None = None  # start from this checkpoint of the same model (e.g. an L1-pre-trained actor)
    head: str = "fc"  # the actor's output head: "fc" (the paper's) or "sigma" (networks.py)
    over_weight: float = 1.0  # loss "sigma": weight of over-estimated widths relative to under-estimated
    lr_decay: float = 1.0  # the lr decays exponentially to lr * lr_decay at `iters` (1: constant) ...
    lr_decay_from: int = 0  # ... starting at this step (constant before it)
    soft_hr: float = 0.0  # soften HR crops by a Gaussian of width U(0, soft_hr) HR pixels (SyntheticPairs) ...
    soft_p: float = 1.0  # ... each crop with this probability

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based): a function of the step alone, so a resume follows it."""
        return decayed(self.lr, self.lr_decay, step, self.iters, start=self.lr_decay_from)

    def __post_init__(self):
        if self.model not in MODELS:
            raise InputError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.loss not in LOSSES:
            raise InputError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.loss in ("sr", "code", "sigma") and self.model != "actor":
            raise InputError(f"loss {self.loss!r} trains the actor (it reads its action), not KENet")
        if self.loss == "sigma" and (self.head != "sigma" or self.family != "isotropic"):
            raise InputError("loss 'sigma' needs --head sigma and the isotropic family")
        if not (math.isfinite(self.soft_hr) and self.soft_hr >= 0):
            raise InputError(f"soft_hr must be >= 0 (HR pixels), got {self.soft_hr!r}")
        if not 0 <= self.soft_p <= 1:
            raise InputError(f"soft_p must be a probability in [0, 1], got {self.soft_p!r}")
        if self.over_weight <= 0:
            raise InputError(f"over_weight must be > 0, got {self.over_weight}")
        if not 0 < self.lr_decay <= 1:
            raise InputError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if not (isinstance(self.lr_decay_from, int) and 0 <= self.lr_decay_from < self.iters):
            raise InputError(f"lr_decay_from must be an integer in [0, iters={self.iters}), got {self.lr_decay_from!r}")
        if self.amp not in ("auto", "bf16", "off"):
            raise InputError(f"amp must be 'auto', 'bf16' or 'off', got {self.amp!r}")
        for name in ("iters", "batch", "patch", "ckpt_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"{name} must be a positive integer, got {getattr(self, name)!r}")


def code_loss(actions: torch.Tensor, codes: torch.Tensor, kernels: torch.Tensor, codec) -> torch.Tensor:
    """Mean over the batch of ``||codec.action_to_code(actions) - codes||^2 / ||kernels||^2``: with the
    codec's orthonormal PCA rows, the relative squared L2 error of the decoded kernels (the ``code`` loss)."""
    err = (codec.action_to_code(actions) - codes).square().sum(dim=1)
    return (err / kernels.reshape(len(kernels), -1).square().sum(dim=1)).mean()


def sigma_loss(sigma_hat: torch.Tensor, sigma: torch.Tensor, over_weight: float = 1.0) -> torch.Tensor:
    """Mean of ``|log sigma_hat - log sigma|``, the over-estimates (sigma_hat > sigma) times ``over_weight``."""
    d = torch.log(sigma_hat) - torch.log(sigma)
    return torch.where(d > 0, over_weight * d, -d).mean()


def validation_kernels(folder: str, scale: int = 4, size: int = 21, lr_crop: int | None = None):
    """Fixed ``(lr [1, 3, h, w], kernel [l, l])`` pairs: every image of ``folder`` with every Gaussian8 kernel,
    the LR optionally centre-cropped to ``lr_crop``."""
    from blindsr_gym.data import ImageFolder
    from blindsr_gym.degradation import degrade
    from blindsr_gym.kernels import gaussian8
    from blindsr_gym.utils import centre_crop, to_tensor

    source = ImageFolder(folder, mod=scale)
    out = []
    for i in range(len(source)):
        hr = to_tensor(source[i])
        for k in gaussian8(scale, size):
            lr = degrade(hr, k, scale)
            if lr_crop:
                lr = centre_crop(lr, lr_crop)
            out.append((lr, k))
    return out


@torch.no_grad()
def validate(model: torch.nn.Module, estimate, val, device) -> dict:
    """Mean kernel PSNR (dB) of ``estimate(model, lr) -> kernels`` over ``val`` pairs."""
    was = model.training
    model.eval()
    scores = [float(kernel_psnr(estimate(model, lr.to(device)).cpu(), k[None])[0]) for lr, k in val]
    model.train(was)
    return {"kernel_psnr": float(np.mean(scores)), "pairs": len(scores)}


class EstimatorStep:
    """One optimisation step of a kernel estimator (the actor or KENet) on a batch with its kernels:
    ``loss_fn(lr, code, kernels, hr)`` is the configured loss; the learning rate is ``lr_at(step)``, a function
    of the step alone, so a resumed run follows it even over the optimiser's stored rate."""

    def __init__(self, optimizer, loss_fn, lr_at):
        self.optimizer, self.loss_fn, self.lr_at = optimizer, loss_fn, lr_at

    def update(self, lr_img, code, hr, kernels, step: int) -> dict:
        loss = self.loss_fn(lr_img, code, kernels, hr)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)
        self.optimizer.step()
        return {"loss": loss}


@stoppable
def pretrain(cfg: PretrainConfig, resume: bool = False, progress: bool = True, stop_after: int | None = None,
             time_budget: float | None = None) -> dict:
    """Train (or resume); writes ``OUT/pretrain_state.pt`` and ``OUT/actor.safetensors`` (``kenet.safetensors``
    for KENet) with its card. ``stop_after``: stop at the first checkpoint after this many steps of this call
    (a run split over leases or sessions; ``--resume`` continues it as if it had not stopped); ``time_budget``
    (seconds): stop at the first checkpoint after it has passed. Ctrl-C or SIGTERM: a checkpoint at the step
    under way, then stop (``stopped_by`` names the signal)."""
    from blindsr_gym.data import ImageFolder
    from blindsr_gym.kernels import KernelCodec
    from blindsr_gym.synthesis import SyntheticPairs
    from blindsr_gym.training import Run, resolve_amp
    from blindsr_gym.utils import resolve_device

    from . import save_actor
    from .kenet import save_kenet

    out = Path(cfg.out)
    device = resolve_device(cfg.device)
    run = Run(out, "pretrain_state.pt", asdict(cfg), RESUME_ALLOWED, resume=resume,
              defaults=asdict(PretrainConfig(data="", out="")), time_budget=time_budget)
    codec = KernelCodec.default()
    pairs = SyntheticPairs(ImageFolder(cfg.data, mod=cfg.scale, recursive=True, cache=True), codec, cfg.family,
                           cfg.scale, cfg.patch, soft_hr=cfg.soft_hr, soft_p=cfg.soft_p)
    val = validation_kernels(cfg.val_data, cfg.scale, codec.size) if cfg.val_data else None
    amp = resolve_amp(cfg.amp, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = (Actor(code_len=codec.length, head=cfg.head, codec=codec) if cfg.model == "actor"
                 else KENet(kernel_size=codec.size)).to(device)
    init_card = {}
    if cfg.init:  # the starting point's weights (unless resuming) and its card, which travels along
        from . import _resolve as resolve_actor
        from . import load_actor
        from .kenet import load_kenet, resolve_kenet

        path = resolve_actor(cfg.init) if cfg.model == "actor" else resolve_kenet(cfg.init)
        if not resume:
            src = load_actor(path, codec=codec) if cfg.model == "actor" else load_kenet(path)
            if cfg.model == "actor" and src.head_kind != cfg.head:
                raise InputError(f"--init {path} has head {src.head_kind!r}, not --head {cfg.head!r}")
            model.load_state_dict(src.state_dict())
        if path.with_suffix(".json").is_file():
            init_card = json.loads(path.with_suffix(".json").read_text()).get("training", {})
    renderer = None
    if cfg.loss == "sr":
        from blindsr_gym.envs.core import resolve_renderer

        renderer = resolve_renderer(cfg.renderer, device).requires_grad_(False)
        if renderer.codec.hash != codec.hash or renderer.scale != cfg.scale:
            raise InputError(f"renderer {cfg.renderer} has codec {renderer.codec.hash} / x{renderer.scale}; "
                             f"the actor is trained for {codec.hash} / x{cfg.scale}")
        renderer = renderer.to(memory_format=torch.channels_last)

    def forward(m, lr):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            return m(lr).float()

    if cfg.model == "actor":
        def estimate(m, lr):  # decoded kernel of the predicted action
            return codec.decode(codec.action_to_code(forward(m, lr)))
    else:
        estimate = forward

    def loss_fn(lr, code, k, hr):
        if cfg.loss == "sr":
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
                sr = renderer(lr.contiguous(memory_format=torch.channels_last),
                              codec.action_to_code(model(lr).float()))
            return F.l1_loss(sr.float(), hr)
        if cfg.loss == "sigma":
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
                sigma_hat = model.sigma(lr)
            return sigma_loss(sigma_hat.float(), isotropic_sigma(k), cfg.over_weight)
        if cfg.model == "actor" and cfg.loss == "l1":
            return F.l1_loss(forward(model, lr), codec.code_to_action(code))
        if cfg.loss == "code":
            return code_loss(forward(model, lr), code, k, codec)
        k_hat = estimate(model, lr)
        return adaptive_attention_loss(k_hat, k) if cfg.loss == "att" else (k_hat - k).abs().sum(dim=(1, 2)).mean()

    opt = adam(model.parameters(), cfg.lr, device)

    updater = EstimatorStep(opt, loss_fn, cfg.lr_at)

    rng = np.random.default_rng([cfg.seed, 11])
    step, last_val, stopped_by = 0, None, None
    if run.state is not None:
        st = run.state
        model.load_state_dict(st["model"] if "model" in st else st["actor"])
        opt.load_state_dict(st["opt"])
        rng.bit_generator.state = json.loads(st["rng"])
        step, last_val = st["step"], st.get("val")
    writer = run.writer(step)
    bar = run.progress(progress, cfg.iters, step, f"train {cfg.model}")
    run.restart_clock()
    loss = torch.zeros(())
    tag = ("losses/action_l1" if (cfg.model == "actor" and cfg.loss == "l1") else
           "losses/sr_l1" if cfg.loss == "sr" else "losses/code_l2" if cfg.loss == "code" else
           "losses/log_sigma_l1" if cfg.loss == "sigma" else
           f"losses/kernel_{cfg.loss}")
    first = step
    losses = DeviceLoss(device, run.state_path, step)  # read (and checked) every LOG_EVERY steps and at saves
    while step < cfg.iters:
        lr_img, code, hr, k = pairs.sample(rng, cfg.batch, device, with_kernels=True)
        loss = updater.update(lr_img, code, hr, k, step)["loss"]
        step += 1
        run.tick()
        losses.add(loss)
        if cfg.lr_decay != 1.0:
            writer.add_scalar("charts/lr", opt.param_groups[0]["lr"], step)
        if bar is not None:
            bar.update(1)
        stopped_by = stop_requested()  # Ctrl-C or SIGTERM: a checkpoint at this step, then stop
        checkpoint = step % cfg.ckpt_every == 0 or step == cfg.iters or stopped_by is not None
        if step % LOG_EVERY == 0 or checkpoint:
            mean = losses.read()
            writer.add_scalar(tag, mean, step)
            if bar is not None:
                bar.set_postfix(loss=f"{mean:.4g}", **({"val_kpsnr": f"{last_val['kernel_psnr']:.2f}"}
                                                      if last_val else {}))
        if checkpoint:
            if val is not None:
                last_val = validate(model, estimate, val, device)
                writer.add_scalar("eval/kernel_psnr", last_val["kernel_psnr"], step)
            run.save_state({"model": model.state_dict(), "opt": opt.state_dict(),
                      "rng": json.dumps(rng.bit_generator.state), "step": step, "val": last_val})
            loss_name = {"l1": "L1 on actions" if cfg.model == "actor" else "L1 on kernels",
                         "att": "adaptive attention loss on kernels",
                         "code": "relative squared L2 on PCA codes (the kernel's, in the codec's subspace)",
                         "sr": f"L1 of the SR image through the frozen renderer {cfg.renderer}",
                         "sigma": f"L1 on log sigma, over-estimates x{cfg.over_weight}"}[cfg.loss]
            card = {"training": {"stage": f"supervised kernel estimation ({loss_name})", **asdict(cfg),
                                 "precision": amp, "iterations": step, **run.card(device)}}
            if init_card:
                card["training"]["init_training"] = init_card
            if last_val is not None:
                card["validation"] = {"data": cfg.val_data, "kernels": "gaussian8", **last_val}
            if cfg.model == "actor":
                save_actor(model, out / "actor.safetensors", codec=codec, card=card)
            else:
                save_kenet(model, out / "kenet.safetensors", card=card)
            run.restart_clock()
            if stopped_by is not None or step < cfg.iters and (stop_after is not None and step - first >= stop_after
                                                               or run.out_of_time()):
                break
    if bar is not None:
        bar.close()
    run.close()
    return {"step": step, "wall_s": run.wall, "last_loss": float(loss.detach()), "val": last_val, "out": str(out),
            "stopped_by": stopped_by, "state": str(run.state_path)}


def add_arguments(p: argparse.ArgumentParser, model: str = "actor") -> None:
    d = PretrainConfig(data="", out="", model=model, loss="l1" if model == "actor" else "att")
    p.set_defaults(model=model)
    p.add_argument("--data", required=True, help="folder of HR images")
    p.add_argument("--out", required=True, help="run folder: resume state, the model and its card, TensorBoard")
    p.add_argument("--iters", type=int, default=d.iters, help="training steps in all (a resume may raise it)")
    p.add_argument("--batch", type=int, default=d.batch, help="pairs per step")
    p.add_argument("--patch", type=int, default=d.patch, help="LR size")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    p.add_argument("--lr-decay", type=float, default=d.lr_decay,
                   help="decay the lr exponentially to lr x this at --iters (1: constant)")
    p.add_argument("--lr-decay-from", type=int, default=d.lr_decay_from,
                   help="start the decay at this step (the lr is a function of the step, so --resume follows it)")
    p.add_argument("--family", default=d.family, help="kernel family of the training pairs (e.g. isotropic)")
    p.add_argument("--loss", default=d.loss, choices=LOSSES,
                   help="l1: on actions (actor) or kernels (KENet); code (actor): relative squared L2 on PCA "
                        "codes; att: KENet's adaptive attention loss on kernels; sr (actor): L1 of the SR image "
                        "through the frozen --renderer; sigma (actor, --head sigma): L1 on log sigma")
    p.add_argument("--renderer", default=d.renderer, help="the frozen renderer of --loss sr")
    p.add_argument("--init", default=None, help="start from this checkpoint of the same model")
    if model == "actor":
        p.add_argument("--head", default=d.head, choices=["fc", "sigma"],
                       help="fc: the paper's 15-D head; sigma: one width, read off the isotropic family's curve")
        p.add_argument("--over-weight", type=float, default=d.over_weight,
                       help="--loss sigma: weight of over-estimated widths (AMNet is steeper above the truth)")
    p.add_argument("--soft-hr", type=float, default=d.soft_hr,
                   help="soften HR crops by a Gaussian of width uniform in [0, SOFT_HR] HR pixels before the "
                        "degradation (the target stays the degradation kernel): soft photographs")
    p.add_argument("--soft-p", type=float, default=d.soft_p, help="probability that a crop is softened (--soft-hr)")
    p.add_argument("--val-data", default=None, help="HR folder scored with Gaussian8 kernels (kernel PSNR)")
    p.add_argument("--amp", default=d.amp, choices=["auto", "bf16", "off"], help="bf16 autocast")
    p.add_argument("--ckpt-every", type=int, default=d.ckpt_every, help="steps between checkpoints and validations")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the weights and the training pairs")
    p.add_argument("--device", default=d.device, help="'cpu', 'cuda' or 'auto'")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (refused if its setting differs)")
    p.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                   help="stop at the first checkpoint after this many minutes (a GPU lease); --resume goes on")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_kenet_arguments(p: argparse.ArgumentParser) -> None:
    add_arguments(p, model="kenet")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = PretrainConfig(data=args.data, out=args.out, iters=args.iters, batch=args.batch, patch=args.patch,
                         lr=args.lr, family=args.family, loss=args.loss, model=args.model, val_data=args.val_data,
                         amp=args.amp, ckpt_every=args.ckpt_every, seed=args.seed, device=args.device,
                         renderer=args.renderer, init=args.init, head=getattr(args, "head", "fc"),
                         over_weight=getattr(args, "over_weight", 1.0), lr_decay=args.lr_decay,
                         lr_decay_from=args.lr_decay_from, soft_hr=args.soft_hr, soft_p=args.soft_p)
    summary = pretrain(cfg, resume=args.resume, progress=not args.no_progress,
                       time_budget=args.time_budget * 60 if args.time_budget else None)
    print(json.dumps(summary))
    report_stop(summary["stopped_by"], summary["step"], summary["state"])
    return exit_status(summary["stopped_by"])
