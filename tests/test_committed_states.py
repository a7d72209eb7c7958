"""The resume states committed in checkpoints/ resume with today's code.

checkpoints/README.md tells a later session to copy a state into ``runs/<name>`` and pass ``--resume``. A state
written by another version of a trainer can stop resuming without anyone noticing until a session (or a GPU
lease) tries: a setting the trainer no longer has, weights that no longer fit the model, an optimiser state of
another shape. Each test resumes a committed state with its own stored setting, on a few synthetic images,
for one more step.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from blindsr_gym.fileio import write_image

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def _state(name: str, file: str) -> Path:
    path = CHECKPOINTS / name / file
    if not path.is_file():
        pytest.skip(f"{path} is not in this checkout")
    return path


def _images(folder: Path, size: int, count: int = 3) -> Path:
    """HR images large enough for the run's crops (plain noise: the step, not what it learns, is tested)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        write_image(folder / f"{i}.png", rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8))
    return folder


def _resumed_copy(path: Path, out: Path) -> dict:
    out.mkdir()
    (out / path.name).write_bytes(path.read_bytes())
    return torch.load(path, map_location="cpu", weights_only=True)


def test_the_committed_amnet_x4_state_resumes_for_another_step(tmp_path):
    from blindsr_gym.renderers.train import TrainConfig, train

    path = _state("amnet_x4", "last.pt")
    out = tmp_path / "run"
    saved = _resumed_copy(path, out)
    cfg = dict(saved["config"])
    cfg.pop("world", None)
    step = saved["step"]
    cfg.update(data=str(_images(tmp_path / "hr", cfg["patch"] * cfg["scale"] + 8)), out=str(out), iters=step + 1,
               val_data=None, threads=1, device="cpu")
    summary = train(TrainConfig(**cfg), resume=True, progress=False)
    assert summary["step"] == step + 1
    after = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert after["step"] == step + 1
    assert set(after["model"]) == set(saved["model"])
    moved = [k for k in saved["model"] if not torch.equal(saved["model"][k], after["model"][k])]
    assert moved, "the resumed step changed no weight"


def test_the_committed_actor_sigma_state_resumes_for_another_step(tmp_path):
    from blindsr_gym.agents.pretrain import PretrainConfig, pretrain

    path = _state("actor_sigma", "pretrain_state.pt")
    out = tmp_path / "run"
    saved = _resumed_copy(path, out)
    cfg = dict(saved["config"])
    step = saved["step"]
    # the schedule ends at `iters`; raising it is how the README goes on ("raise --iters")
    cfg.update(data=str(_images(tmp_path / "hr", cfg["patch"] * cfg.get("scale", 4) + 8)), out=str(out),
               iters=step + 1, val_data=None, device="cpu")
    summary = pretrain(PretrainConfig(**cfg), resume=True, progress=False)
    assert summary["step"] == step + 1
    after = torch.load(out / "pretrain_state.pt", map_location="cpu", weights_only=True)
    assert after["step"] == step + 1
    moved = [k for k in saved["model"] if not torch.equal(saved["model"][k], after["model"][k])]
    assert moved, "the resumed step changed no weight"


@pytest.mark.parametrize("name", ["ddpg_psnr_paper", "ddpg_psnr_paper_envslope", "ddpg_niqe_paper"])
def test_the_committed_ddpg_states_resume_for_another_iteration(tmp_path, name):
    """A DDPG state keeps its replay buffer as episode sources: the resume draws its 20,000 images again from the
    training data (so this test needs it) and checks them, then trains one more iteration."""
    from dataclasses import fields

    from blindsr_gym.agents.ddpg import DDPGConfig, train_ddpg

    path = _state(name, "ddpg_state.pt")
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"
    if not data.is_dir():
        pytest.skip(f"{data} is absent: the state's replay buffer is drawn again from the training images")
    out = tmp_path / "run"
    saved = _resumed_copy(path, out)
    cfg = {k: v for k, v in saved["config"].items() if k in {f.name for f in fields(DDPGConfig)}}
    it = saved["iteration"]
    cfg.update(env_kwargs={**cfg["env_kwargs"], "dataset": str(data), "device": "cpu"}, eval_env_kwargs={},
               eval_episodes=4, eval_every=1, ckpt_every=1, device="cpu")  # a resume may change these
    result = train_ddpg(DDPGConfig(**cfg), out, resume=True, progress=False, stop_after=1)
    after = torch.load(out / "ddpg_state.pt", map_location="cpu", weights_only=True)
    assert result["iterations"] == after["iteration"] == it + 1
    assert len(after["buffer"]["rewards"]) == len(saved["buffer"]["rewards"]) == 20_000
    assert not all(torch.equal(saved["actor"][k], after["actor"][k]) for k in saved["actor"]), "no weight moved"
