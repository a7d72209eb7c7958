"""Renderer training: data synthesis, exact resume, and 2-process DDP on CPU (gloo)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from blindsr_gym.kernels import KernelCodec, isotropic_gaussian, isotropic_sigma
from blindsr_gym.renderers import load_renderer
from blindsr_gym.renderers.train import (
    SyntheticPairs,
    TrainConfig,
    augment,
    lr_at,
    train,
    widen_kernels,
)
from blindsr_gym.utils import weights_digest


def tiny(hr_folder, out, **kw):
    base = dict(data=str(hr_folder), out=str(out), arch_kwargs={"num_blocks": 1}, patch=8, batch=2, iters=4,
                ckpt_every=2, log_every=1, threads=1, device="cpu", amp="off")
    base.update(kw)
    return TrainConfig(**base)


def test_augment_covers_the_8_symmetries():
    img = np.arange(12).reshape(3, 4, 1)
    rng = np.random.default_rng(0)
    seen = {augment(img, rng).tobytes() for _ in range(200)}
    assert len(seen) == 8


def test_synthetic_pairs_are_eq1_with_true_codes(hr_folder):
    from blindsr_gym.data import ImageFolder

    codec = KernelCodec.default()
    pairs = SyntheticPairs(ImageFolder(hr_folder, mod=4), codec, patch=8)
    lr, code, hr = pairs.sample(np.random.default_rng(0), 3)
    assert lr.shape == (3, 3, 8, 8) and hr.shape == (3, 3, 32, 32) and code.shape == (3, 15)
    assert torch.equal(lr, (lr * 255).round() / 255)  # 8-bit levels
    # the same stream gives the same batch
    lr2, code2, _ = pairs.sample(np.random.default_rng(0), 3)
    assert torch.equal(lr, lr2) and torch.equal(code, code2)
    with pytest.raises(ValueError, match="at least"):
        SyntheticPairs(ImageFolder(hr_folder), codec, patch=64)


def test_soft_hr_softens_the_crops_and_keeps_the_codes(hr_folder):
    from blindsr_gym.data import ImageFolder

    codec = KernelCodec.default()
    sharp = SyntheticPairs(ImageFolder(hr_folder, mod=4), codec, patch=8)
    soft = SyntheticPairs(ImageFolder(hr_folder, mod=4), codec, patch=8, soft_hr=2.0)
    lr_a, code_a, hr_a = sharp.sample(np.random.default_rng(3), 4)
    lr_b, code_b, hr_b = soft.sample(np.random.default_rng(3), 4)
    assert torch.equal(code_a, code_b)  # the target is still the degradation kernel's code

    def tv(x):  # mean absolute horizontal difference per sample
        return (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3))

    assert (tv(hr_b) < tv(hr_a)).all() and (tv(lr_b) <= tv(lr_a)).all()
    assert torch.allclose(hr_b.mean(dim=(1, 2, 3)), hr_a.mean(dim=(1, 2, 3)), atol=0.02)  # a blur keeps the mean
    never = SyntheticPairs(ImageFolder(hr_folder, mod=4), codec, patch=8, soft_hr=2.0, soft_p=0.0)
    _, code_c, hr_c = never.sample(np.random.default_rng(3), 4)  # softening drawn, never applied
    assert torch.equal(code_c, code_a) and torch.allclose(hr_c, hr_a, atol=1e-6)
    with pytest.raises(ValueError, match="soft_hr"):
        SyntheticPairs(ImageFolder(hr_folder, mod=4), codec, patch=8, soft_hr=-1.0)
    with pytest.raises(ValueError, match="soft_p"):
        SyntheticPairs(ImageFolder(hr_folder, mod=4), codec, patch=8, soft_hr=1.0, soft_p=1.5)


def test_widen_kernels_matches_the_wider_gaussian():
    # a Gaussian of width s convolved with one of width w is the Gaussian of width sqrt(s^2 + w^2)
    s, w = np.array([1.8, 2.6, 0.5]), np.array([1.5, 1.0, 2.0])
    wide = widen_kernels(isotropic_gaussian(s, 21), w)
    assert torch.allclose(wide, isotropic_gaussian(np.hypot(s, w), 21), atol=1e-3)  # 21x21 truncation
    assert torch.allclose(wide.sum(dim=(-1, -2)), torch.ones(3))
    k = isotropic_gaussian([2.0], 21)
    assert torch.allclose(widen_kernels(k, 0.1), k, atol=1e-6)  # width 0.1: a delta on the pixel grid


def test_code_blur_shows_a_wider_kernel_and_keeps_the_images(hr_folder):
    from blindsr_gym.data import ImageFolder

    codec = KernelCodec.default()
    plain = SyntheticPairs(ImageFolder(hr_folder, mod=4), codec, patch=8)
    wide = SyntheticPairs(ImageFolder(hr_folder, mod=4), codec, patch=8, code_blur=2.0, code_blur_p=1.0)
    lr_a, code_a, hr_a, k_a = plain.sample(np.random.default_rng(3), 6, with_kernels=True)
    lr_b, code_b, hr_b, k_b = wide.sample(np.random.default_rng(3), 6, with_kernels=True)
    assert torch.equal(lr_a, lr_b) and torch.equal(hr_a, hr_b) and torch.equal(k_a, k_b)
    true_w = isotropic_sigma(codec.decode(code_a))
    shown_w = isotropic_sigma(codec.decode(code_b))
    assert (shown_w > true_w - 0.05).all() and (shown_w - true_w).max() > 0.1  # never narrower, some wider
    never = SyntheticPairs(ImageFolder(hr_folder, mod=4), codec, patch=8, code_blur=2.0, code_blur_p=0.0)
    assert torch.equal(never.sample(np.random.default_rng(3), 6)[1], code_a)
    with pytest.raises(ValueError, match="code_blur"):
        SyntheticPairs(ImageFolder(hr_folder, mod=4), codec, patch=8, code_blur=-1.0)
    with pytest.raises(ValueError, match="code_blur_p"):
        TrainConfig(data="x", out="y", code_blur=1.0, code_blur_p=2.0)
    with pytest.raises(ValueError, match="DAN"):
        TrainConfig(data="x", out="y", arch="dan", code_blur=1.0, code_blur_p=0.5)


def test_lr_schedule_is_a_function_of_the_step(tmp_path):
    cfg = TrainConfig(data="x", out="y", lr=1e-3, lr_milestones=[10, 20])
    assert [lr_at(cfg, s) for s in (0, 9, 10, 19, 20, 99)] == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]
    with pytest.raises(ValueError, match="batch"):
        TrainConfig(data="x", out="y", batch=0)


def test_a_run_writes_its_card_and_tensorboard_events(hr_folder, tmp_path):
    out = train(tiny(hr_folder, tmp_path / "r"), progress=False)
    assert out["step"] == 4
    card = json.loads((tmp_path / "r" / "amnet.json").read_text())
    assert card["training"]["iterations"] == 4 and card["training"]["hardware"] and card["training"]["loss"] == "L1"
    assert any((tmp_path / "r" / "tb").iterdir())  # TensorBoard events


@pytest.mark.parametrize("gan", [False, True])
def test_a_non_finite_loss_stops_the_run_before_its_next_save(hr_folder, tmp_path, monkeypatch, gan):
    """The loss is checked on the device and read every log_every steps and before each save: a NaN at step 5
    is caught at step 6 (log_every 3), before that step's save, so the saved state stays at step 4. The GAN
    path logs its discriminator loss as a tensor, read only when logged."""
    import blindsr_gym.renderers.train as rt

    kw = dict(iters=8, ckpt_every=2, log_every=3)
    if gan:
        train(tiny(hr_folder, tmp_path / "base", iters=2), progress=False)
        kw.update(gan=True, init=str(tmp_path / "base" / "amnet.safetensors"), w_adv=0.1)
    real = rt.RendererStep.extra_loss if not gan else rt.GANStep.extra_loss
    owner = rt.GANStep if gan else rt.RendererStep

    def poisoned(self, sr, hr, loss, logs, step):
        out = real(self, sr, hr, loss, logs, step)
        return out * float("nan") if step == 4 else out  # step index 4: the run's step 5

    monkeypatch.setattr(owner, "extra_loss", poisoned)
    out = tmp_path / "r"
    with pytest.raises(FloatingPointError, match="the loss is nan in steps 5-6; last good checkpoint"):
        train(tiny(hr_folder, out, **kw), progress=False)
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 4
    name = "amnet_gan" if gan else "amnet"
    assert json.loads((out / f"{name}.json").read_text())["training"]["iterations"] == 4


def test_ddp_two_cpu_processes_stay_identical(hr_folder, tmp_path):
    """torchrun --nproc_per_node=2 with gloo: each process draws its own data, DDP averages the
    gradients, so the two replicas' weights must be bit-identical after the run."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "blindsr_gym.renderers.train", "--data", str(hr_folder), "--out", str(out), "--num-blocks", "1",
           "--patch", "8", "--batch", "4", "--iters", "3", "--ckpt-every", "3", "--threads", "1",
           "--device", "cpu", "--amp", "off", "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    assert summary["world"] == 2 and summary["step"] == 3
    fp = summary["replica_fingerprints"]
    assert len(fp) == 2 and fp[0] == fp[1]
    assert weights_digest(load_renderer(out / "amnet.safetensors")) == fp[0]
    state = torch.load(out / "last.pt", weights_only=True)
    assert len(state["rng"]) == 2 and state["rng"][0] != state["rng"][1]  # one stream per process
    assert Path(out / "amnet.json").is_file()


def test_amgan_finetunes_from_amnet_and_says_so_in_its_card(hr_folder, tmp_path):
    train(tiny(hr_folder, tmp_path / "base", iters=2), progress=False)
    init = str(tmp_path / "base" / "amnet.safetensors")
    gan = dict(gan=True, init=init, w_adv=0.1)
    train(tiny(hr_folder, tmp_path / "g_full", **gan), progress=False)
    a = load_renderer(tmp_path / "g_full" / "amnet_gan.safetensors")
    assert weights_digest(a) != weights_digest(load_renderer(init))  # it did train
    card = json.loads((tmp_path / "g_full" / "amnet_gan.json").read_text())
    assert card["training"]["gan"]["perceptual"].startswith("off")
    assert card["training"]["init_training"]["training"]["iterations"] == 2
    assert card["training"]["loss"] == "1*L1 + 0.1*RealnessGAN"
    with pytest.raises(ValueError, match="init"):
        TrainConfig(data="x", out="y", gan=True)


def test_warm_start_from_init_without_gan(hr_folder, tmp_path):
    """--init without --gan: the same architecture's weights, a fresh Adam, the card says so; another arch fails."""
    kw = dict(arch="dan", arch_kwargs={"num_blocks": 1, "loops": 2})
    train(tiny(hr_folder, tmp_path / "a", iters=2, **kw), progress=False)
    init = str(tmp_path / "a" / "dan.safetensors")
    train(tiny(hr_folder, tmp_path / "b", iters=1, init=init, **kw), progress=False)
    warm = load_renderer(tmp_path / "b" / "dan.safetensors")
    start = load_renderer(init)
    # a fresh Adam's first step moves every weight with a gradient by ~lr (m / sqrt(v) = +-1): the run started
    # from init's weights (a seeded fresh model sits O(0.1) away) and its optimiser was new
    lr = tiny(hr_folder, tmp_path).lr
    d = torch.cat([(p - q).abs().flatten() for p, q in zip(warm.parameters(), start.parameters(), strict=True)])
    assert 0.9 * lr < d.max().item() < 1.1 * lr and (d > 0.5 * lr).float().mean() > 0.5
    card = json.loads((tmp_path / "b" / "dan.json").read_text())["training"]
    assert card["iterations"] == 1 and card["init"] == init and card["init_training"]["training"]["iterations"] == 2
    with pytest.raises(ValueError, match="config"):
        train(tiny(hr_folder, tmp_path / "d", iters=1, init=init, arch="dan"), progress=False)


def test_dan_trains_end_to_end(hr_folder, tmp_path):
    kw = dict(arch="dan", arch_kwargs={"num_blocks": 1, "loops": 2})
    train(tiny(hr_folder, tmp_path / "full", **kw), progress=False)
    assert load_renderer(tmp_path / "full" / "dan.safetensors").codec.length == 10
    card = json.loads((tmp_path / "full" / "dan.json").read_text())
    assert card["training"]["loss"] == "L1 on the SR + L1 on the code of every loop"
    with pytest.raises(ValueError, match="not DAN"):
        train(tiny(hr_folder, tmp_path / "g", gan=True, init=str(tmp_path / "full" / "dan.safetensors"), **kw),
              progress=False)


def test_a_resumed_warm_start_keeps_its_init_card(hr_folder, tmp_path):
    train(tiny(hr_folder, tmp_path / "base", iters=2), progress=False)
    init = str(tmp_path / "base" / "amnet.safetensors")
    train(tiny(hr_folder, tmp_path / "warm", iters=2, init=init), progress=False)
    train(tiny(hr_folder, tmp_path / "warm", iters=4, init=init), resume=True, progress=False)
    card = json.loads((tmp_path / "warm" / "amnet.json").read_text())["training"]
    assert card["iterations"] == 4 and card["init"] == init
    assert card["init_training"]["training"]["iterations"] == 2  # the init's whole card, after the resume too


def test_resuming_a_finished_run_writes_its_export_again(hr_folder, tmp_path):
    """A run resumed at the step it stands at trains nothing, leaves its state as it is, and writes its weights
    and card from the state: the way to recover an export that was lost, or to export a committed resume state."""
    out = tmp_path / "run"
    train(tiny(hr_folder, out, iters=2), progress=False)
    weights, card_path = out / "amnet.safetensors", out / "amnet.json"
    from safetensors.torch import load_file

    first, first_card = load_file(weights), json.loads(card_path.read_text())
    state_before = (out / "last.pt").read_bytes()
    weights.unlink()
    card_path.unlink()
    summary = train(tiny(hr_folder, out, iters=2), resume=True, progress=False)
    assert summary["step"] == 2
    again = load_file(weights)
    assert again.keys() == first.keys() and all(torch.equal(again[k], v) for k, v in first.items())
    card = json.loads(card_path.read_text())["training"]
    assert card["iterations"] == 2 and card["wall_time_s"] == first_card["training"]["wall_time_s"]
    assert (out / "last.pt").read_bytes() == state_before  # not rewritten
