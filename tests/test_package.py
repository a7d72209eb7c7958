import configparser
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_subpackages_import_under_blindsr_gym_only(tmp_path):
    # run outside the repository, so the root folders agents/ and renderers/ are not on sys.path
    code = ("import importlib.util, blindsr_gym.agents, blindsr_gym.renderers;"
            "print(importlib.util.find_spec('agents') is None, importlib.util.find_spec('renderers') is None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_setup_cfg_installs_no_top_level_agents_or_renderers():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    packages = cfg["options"]["packages"].split()
    assert all(p == "blindsr_gym" or p.startswith("blindsr_gym.") for p in packages)
    mapping = dict(line.split(" = ") for line in cfg["options"]["package_dir"].strip().splitlines())
    assert mapping["blindsr_gym.agents"] == "agents" and mapping["blindsr_gym.renderers"] == "renderers"


def _demo(*args):
    out = subprocess.run([sys.executable, "-m", "blindsr_gym.cli", "demo", "--json", "--sigmas", "2.0", *args],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_cli_demo_json_with_the_fake_renderer():
    rows = _demo("--renderer", "bicubic")["rows"]
    assert len(rows) == 5 and all(abs(r["true_kernel_reward"]) < 1e-6 for r in rows)
    assert all(r["bicubic_niqe"] > r["hr_niqe"] for r in rows if r["image"] in ("astronaut", "chelsea"))


def test_cli_demo_with_the_shipped_renderer():
    from blindsr_gym.renderers import RendererCheckpointError, _resolve

    try:
        _resolve("amnet_x4")
    except RendererCheckpointError:
        pytest.skip("amnet_x4 is not shipped in this checkout yet")
    result = _demo()
    assert result["renderer_iterations"] > 0
    # the trained renderer with the true kernel beats bicubic interpolation on every image
    assert all(r["true_kernel_psnr"] > r["bicubic_psnr"] + 0.5 for r in result["rows"])
    assert all(abs(r["true_kernel_reward"]) < 1e-6 for r in result["rows"])


def test_cli_reports_bad_input():
    out = subprocess.run([sys.executable, "-m", "blindsr_gym.cli", "demo", "--lr-size", "40", "--renderer", "bicubic"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "192x192" in out.stderr
