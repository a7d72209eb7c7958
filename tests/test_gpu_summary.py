"""scripts/gpu_summary.py: what a suite run says, from its JSON files. A missing or torn file is "not
measured", never a pass; an opt-in is a default to change only where it is faster and equality passed."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_summary.py"


def _summary(folder: Path) -> str:
    spec = importlib.util.spec_from_file_location("gpu_summary", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.summary(folder)


def _write(folder: Path, name: str, obj) -> None:
    (folder / f"{name}.json").write_text(obj if isinstance(obj, str) else json.dumps(obj))


def _row(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def test_targets_met_not_met_and_not_measured(tmp_path):
    _write(tmp_path, "device", {"gpu": "Test GPU", "torch": "9.9"})
    _write(tmp_path, "equality", {"passed": True})
    _write(tmp_path, "env_psnr_bf16", {"batched_steps_per_s": 6000.0, "batched_over_sync": 12.0,
                                       "graphs_over_eager": 1.30})
    _write(tmp_path, "env_niqe_bf16", "{ torn")  # a file cut off mid-write
    _write(tmp_path, "cost_table", {"rows": [{"method": "AMNet-RL", "device": "cpu", "latency_s": 0.001},
                                             {"method": "AMNet-RL", "device": "cuda", "latency_s": 0.005,
                                              "latency_graph_s": 0.0015}]})
    text = _summary(tmp_path)
    assert "Test GPU" in text
    assert _row(text, "| BlindSR-PSNR-v0 batched >= 5,000").endswith("| 6000 | met |")
    assert _row(text, "| BlindSR-PSNR-v0 batched >= 20x").endswith("| 12.0 | not met |")
    assert _row(text, "| BlindSR-NIQE-v0").endswith("| not measured | not measured |")
    assert _row(text, "| AMNet-RL at 64², batch 1, <= 2 ms (eager)").endswith("| 5.00 | not met |")  # cuda, not cpu
    assert _row(text, "| AMNet-RL at 64², batch 1, <= 2 ms (CUDA graph)").endswith("| 1.50 | met |")
    assert _row(text, "| AMNet training").endswith("| not measured | not measured |")
    assert _row(text, "| env `cuda_graphs` (PSNR)").endswith("| 1.300x | yes | yes |")
    assert "Equality checks on the device (`equality.json`): passed." in text
    assert "channels-last" not in text  # the layout was not measured
    _write(tmp_path, "train_amnet_bf16", {"it_per_s": 16.3, "channels_last_over_nchw": 0.9})
    assert "0.900x as fast as in NCHW: NCHW wins here" in _summary(tmp_path)


def test_an_opt_in_is_not_a_default_without_equality_or_a_clear_gain(tmp_path):
    _write(tmp_path, "equality", {"passed": False})
    _write(tmp_path, "env_psnr_bf16", {"graphs_over_eager": 1.5})
    _write(tmp_path, "env_niqe_bf16", {"graphs_over_eager": 1.01})
    _write(tmp_path, "ddpg_parallel", {"rows": [
        {"processes": 1, "it_per_s_each": [10.0], "aggregate_over_single": 1.0, "paper_budget_s_each": 500.0},
        {"processes": 2, "it_per_s_each": [8.0, 8.5], "aggregate_over_single": 1.65, "paper_budget_s_each": 625.0}]})
    text = _summary(tmp_path)
    assert _row(text, "| env `cuda_graphs` (PSNR)").endswith("| yes | no (equality not passed) |")
    assert _row(text, "| env `cuda_graphs` (NIQE)").endswith("| no | no |")  # 1% is a tie
    assert "FAILED" in text
    assert "with up to 1 side by side" in text
    assert "A DDPG resume" not in text  # not measured: no line
    _write(tmp_path, "ddpg_state", {"transitions": 20000, "pixels": {"state_mib": 235.6},
                                    "sources": {"state_mib": 4.74, "load_s": 1.5, "images_equal": True}})
    assert "(`ddpg_state.json`, 20,000 transitions): the buffer's state 4.74 MiB (as images 235.6 MiB), its images " \
           "drawn again in 1.5 s, identical." in _summary(tmp_path)


def test_cli_refuses_a_missing_folder(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_summary", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main([str(tmp_path / "nope")]) == 2
    out = tmp_path / "SUMMARY.md"
    assert mod.main([str(tmp_path), "--out", str(out)]) == 0 and out.read_text().startswith("# GPU suite")
