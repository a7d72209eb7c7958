"""What a `benchmarks/gpu_suite.sh` run says, as one markdown page: issue 21's targets against the measured
figures, and the opt-ins (CUDA graphs, fused conv+ReLU, compile) against their defaults.

    python scripts/gpu_summary.py docs/gpu/nvidia-h200 [--out docs/gpu/nvidia-h200/SUMMARY.md]

Reads the suite's JSON files in the folder; a file that is missing (a step that failed or was cut off) shows
as "not measured", never as a pass. An opt-in is called a win only where it is faster and the equality checks
(`equality.json`) passed; the page says which defaults that would change, it changes none.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _load(folder: Path, name: str) -> dict | None:
    p = folder / f"{name}.json"
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        return None


def _fmt(v, spec: str = ".3g") -> str:
    return "not measured" if v is None else format(v, spec) if isinstance(v, (int, float)) else str(v)


def _verdict(value, target: float, higher: bool = True) -> str:
    if value is None:
        return "not measured"
    return "met" if (value >= target if higher else value <= target) else "not met"


def _get(d: dict | None, *keys):
    for k in keys:
        if d is None:
            return None
        d = d.get(k) if isinstance(d, dict) else None
    return d


def summary(folder: Path) -> str:
    files = {n: _load(folder, n) for n in (
        "device", "equality", "env_psnr_bf16", "env_niqe_bf16", "cost_table", "train_amnet_bf16", "pretrain_bf16",
        "ddpg_niqe_bf16", "ddpg_niqe_bf16_graphs", "ddpg_parallel", "host_overhead", "blur_speed",
        "train_amnet_bf16_compile", "env_psnr_bf16_compile", "ddpg_state")}
    dev = files["device"] or {}
    eq_passed = _get(files["equality"], "passed")
    amnet_gpu = next((r for r in (_get(files["cost_table"], "rows") or [])
                      if r.get("method") == "AMNet-RL" and r.get("device") == "cuda"), None)
    psnr, niqe, train = files["env_psnr_bf16"], files["env_niqe_bf16"], files["train_amnet_bf16"]
    lines = [f"# GPU suite: {dev.get('gpu', 'unknown device')} (torch {dev.get('torch', '?')})", "",
             f"From `{folder}`: `python scripts/gpu_summary.py {folder}`.", "",
             "## Issue 21's targets", "", "| target | measured | |", "|---|---|---|"]
    rows = [
        ("BlindSR-PSNR-v0 batched >= 5,000 steps/s", _get(psnr, "batched_steps_per_s"), 5000, True, ".0f"),
        ("BlindSR-PSNR-v0 batched >= 20x SyncVectorEnv", _get(psnr, "batched_over_sync"), 20, True, ".1f"),
        ("BlindSR-NIQE-v0 batched >= 3,000 steps/s", _get(niqe, "batched_steps_per_s"), 3000, True, ".0f"),
        ("AMNet-RL at 64², batch 1, <= 2 ms (eager)",
         None if amnet_gpu is None else amnet_gpu["latency_s"] * 1e3, 2.0, False, ".2f"),
        ("AMNet-RL at 64², batch 1, <= 2 ms (CUDA graph)",
         None if amnet_gpu is None or "latency_graph_s" not in amnet_gpu else amnet_gpu["latency_graph_s"] * 1e3,
         2.0, False, ".2f"),
        ("AMNet training (batch 64, LR 64²) >= 30% of bf16 peak", _get(train, "fraction_of_peak"), 0.30, True, ".3f"),
        ("... compiled (`--compile`)", _get(files["train_amnet_bf16_compile"], "compiled_fraction_of_peak"), 0.30,
         True, ".3f"),
    ]
    for name, value, target, higher, spec in rows:
        lines.append(f"| {name} | {_fmt(value, spec)} | {_verdict(value, target, higher)} |")
    lines += ["", f"Equality checks on the device (`equality.json`): "
              f"{'passed' if eq_passed else 'FAILED' if eq_passed is False else 'not measured'}.", "",
              "## Opt-ins against the defaults", "", "| opt-in | measured | faster | would change a default |",
              "|---|---|---|---|"]
    optins = [
        ("env `cuda_graphs` (PSNR)", _get(psnr, "graphs_over_eager")),
        ("env `cuda_graphs` (NIQE)", _get(niqe, "graphs_over_eager")),
        ("`fused_conv_relu` (batch forward)", _get(files["host_overhead"], "fused_conv_relu", "unfused_over_fused")),
        ("training `--compile`", _get(files["train_amnet_bf16_compile"], "compiled_over_eager")),
        ("env `compile` (PSNR)", _get(files["env_psnr_bf16_compile"], "compiled_over_eager")),
        ("env `compile` + `cuda_graphs` (PSNR)", _get(files["env_psnr_bf16_compile"], "graphs_compiled_over_eager")),
    ]
    ddpg, graphs = files["ddpg_niqe_bf16"], files["ddpg_niqe_bf16_graphs"]
    if _get(ddpg, "it_per_s") and _get(graphs, "it_per_s"):
        optins.append(("DDPG loop with `--cuda-graphs`", graphs["it_per_s"] / ddpg["it_per_s"]))
    for name, ratio in optins:
        faster = None if ratio is None else ratio > 1.02  # within 2%: a tie, not a reason to change a default
        change = "not measured" if ratio is None else "yes" if faster and eq_passed else \
            "no (equality not passed)" if faster else "no"
        lines.append(f"| {name} | {'not measured' if ratio is None else format(ratio, '.3f') + 'x'} | "
                     f"{'-' if faster is None else 'yes' if faster else 'no'} "
                     f"| {change} |")
    lines += ["", "## Training loops", "", "| loop | it/s | TFLOP/s | fraction of peak |", "|---|---|---|---|"]
    lines.append(f"| renderer (batch 64, LR 64²) | {_fmt(_get(train, 'it_per_s'))} | "
                 f"{_fmt(_get(train, 'achieved_tflops'))} | {_fmt(_get(train, 'fraction_of_peak'))} |")
    layout = _get(train, "channels_last_over_nchw")
    for r in _get(files["pretrain_bf16"], "rows") or []:
        lines.append(f"| actor pre-training, loss {r['loss']} | {_fmt(r['it_per_s'])} | {_fmt(r['achieved_tflops'])} "
                     f"| {_fmt(r.get('fraction_of_peak'))} |")
    lines.append(f"| DDPG (BlindSR-NIQE-v0, 96 x 96) | {_fmt(_get(ddpg, 'it_per_s'))} | "
                 f"{_fmt(_get(ddpg, 'achieved_tflops'))} | {_fmt(_get(ddpg, 'fraction_of_peak'))} |")
    if layout is not None:
        lines += ["", f"The renderer's training step in channels-last (`train-renderer`'s layout since 2026-11-29) is "
                  f"{layout:.3f}x as fast as in NCHW" + ("." if layout >= 0.98 else ": NCHW wins here, and the "
                                                          "trainer's layout should follow.")]
    par = _get(files["ddpg_parallel"], "rows")
    if par:
        lines += ["", "## DDPG runs side by side (issue 22's seeds)", "",
                  "| runs | each, it/s | sum over one run | 5,000 iterations of the slowest, s |", "|---|---|---|---|"]
        for r in par:
            lines.append(f"| {r['processes']} | {', '.join(map(str, r['it_per_s_each']))} | "
                         f"{r['aggregate_over_single']}x | {r['paper_budget_s_each']} |")
        fits = [r["processes"] for r in par if r["paper_budget_s_each"] <= 540]
        lines.append("")
        lines.append(f"Each run finishes the paper's budget inside one call (540 s) with up to {max(fits)} side by "
                     "side." if fits else "No count finishes the paper's budget inside one call (540 s); each run "
                     "resumes in the next lease.")
    state = files["ddpg_state"]
    if _get(state, "sources", "load_s") is not None:
        lines += ["", f"A DDPG resume on the device (`ddpg_state.json`, {state['transitions']:,} transitions): the "
                  f"buffer's state {state['sources']['state_mib']} MiB (as images {state['pixels']['state_mib']} "
                  f"MiB), its images drawn again in {state['sources']['load_s']} s, "
                  f"{'identical' if state['sources']['images_equal'] else 'NOT identical'}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        print(f"gpu_summary: {args.folder} is not a folder", file=sys.stderr)
        return 2
    text = summary(args.folder)
    if args.out:
        from blindsr_gym.fileio import write_text

        write_text(args.out, text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
