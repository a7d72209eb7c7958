"""DAN v1: the layout against the official figures, the alternation, checkpoints."""

import pytest
import torch

from blindsr_gym.kernels import KernelCodec
from blindsr_gym.renderers import build_renderer, load_renderer, save_renderer
from blindsr_gym.renderers.dan import DAN


def test_parameters_and_macs_match_the_official_architecture():
    from torch.utils.flop_counter import FlopCounterMode

    dan = DAN()
    assert sum(p.numel() for p in dan.parameters()) == 4_329_511  # DESIGN.md, measured on the official code
    small = DAN(num_blocks=2)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        small(torch.rand(1, 3, 64, 64))
    per_block = 74 * 74 * 9 + 74 * 64 * 9  # MACs per pixel of one Restorer CRB (its two convs)
    full = fc.get_total_flops() / 2 + 4 * 38 * per_block * 64 * 64  # add the other 38 blocks x 4 loops
    assert full == pytest.approx(78.1e9, rel=0.01)  # the paper's Table 6: 78 G


def test_alternation_shapes_init_code_and_detach():
    torch.manual_seed(0)
    dan = DAN(num_blocks=2, loops=3)
    codec = KernelCodec.default(21, 10)
    assert dan.codec.hash == codec.hash
    delta = torch.zeros(1, 21, 21)
    delta[0, 10, 10] = 1
    torch.testing.assert_close(dan.init_code, codec.encode(delta)[0])
    lr = torch.rand(2, 3, 12, 12)
    srs, codes = dan(lr)
    assert len(srs) == len(codes) == 3 and srs[0].shape == (2, 3, 48, 48) and codes[0].shape == (2, 10)
    # the Restorer sees detached codes: its loss does not reach the Estimator
    srs[-1].mean().backward()
    assert all(p.grad is None for p in dan.estimator.parameters())
    assert dan.super_resolve(lr).max() <= 1
    with pytest.raises(ValueError, match="scale"):
        dan.estimator(torch.rand(1, 3, 40, 40), lr[:1])


def test_dan_checkpoint_and_not_a_renderer(tmp_path):
    from blindsr_gym.envs import BlindSREnv

    dan = build_renderer("dan", num_blocks=1, loops=2)
    path = save_renderer(dan, tmp_path / "dan.safetensors")
    loaded = load_renderer(path)
    lr = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(loaded.super_resolve(lr), dan.eval().super_resolve(lr))
    with pytest.raises(TypeError, match="blind SR method"):
        BlindSREnv(renderer=str(path), device="cpu")
