"""Plant known bugs one at a time and check that the test suite kills each of them.

    python scripts/mutation_check.py              # every mutant (about 3 minutes on 2 CPU cores)
    python scripts/mutation_check.py --only env_fixed_blur zeta_always_minus
    python scripts/mutation_check.py --list

Each mutant is one textual change to one file of a temporary copy of the project (the working tree's
tracked and untracked files; the shipped weights are linked, not copied); the tests named for it run on
that copy (``pytest -x``), and the mutant is *killed* when they fail. The unchanged copy must pass the
same tests first, so a kill means the planted bug, not a broken set-up. A mutant whose text is no longer
in its file is reported STALE: update it when the code moves (``tests/test_mutation_check.py`` checks
in CI that every mutant still applies). Exit code 0 when every mutant is killed.

The first five are the bugs issue 26 found surviving the suite; the others guard what later issues
fixed (colour order, safe writes, resume) or what a GPU rewrite of the data path could break.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    what: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS = (
    Mutant("pairs_wrong_codes", "training pairs paired with another sample's code", "blindsr_gym/synthesis.py",
           "code = self.codec.encode(shown)", "code = self.codec.encode(shown).roll(1, 0)",
           ("tests/test_references.py", "tests/test_renderer_training.py", "tests/test_kenet.py")),
    Mutant("env_fixed_blur", "the env blurs every episode with sigma 2.0, whatever its kernel",
           "blindsr_gym/envs/core.py", "kernels = to_device(torch.stack([ep.kernel for ep in episodes]), self.device)",
           "kernels = isotropic_gaussian(np.full(len(episodes), 2.0), episodes[0].kernel.shape[-1])",
           ("tests/test_envs.py", "tests/test_references.py")),
    Mutant("ddpg_resume_skips_weights", "DDPG --resume restores the buffer but not the networks or optimisers",
           "agents/ddpg.py",
           '        actor.load_state_dict(state["actor"])\n        critic.load_state_dict(state["critic"])\n'
           '        opt_a.load_state_dict(state["opt_actor"])\n        opt_c.load_state_dict(state["opt_critic"])\n',
           "", ("tests/test_harness.py",)),
    Mutant("zeta_always_minus", "zeta = -1 for every metric (the PSNR reward's sign flips)", "blindsr_gym/rewards.py",
           "zeta = -1.0 if m.lower_better else 1.0", "zeta = -1.0",
           ("tests/test_envs.py::test_psnr_reward_sign_and_true_kernel_beats_wrong_kernel",
            "tests/test_references.py")),
    Mutant("env_ignores_noise", "the env ignores its noise level", "blindsr_gym/envs/core.py",
           "if any(ep.noise > 0 for ep in episodes):", "if False:",
           ("tests/test_envs.py", "tests/test_agents.py", "tests/test_references.py")),
    Mutant("l1_error_without_gt", "action_l1_error forgets to subtract action_gt", "agents/rollouts.py",
           'np.abs(np.clip(actions, -1, 1) - info["action_gt"])', "np.abs(np.clip(actions, -1, 1))",
           ("tests/test_envs.py", "tests/test_agents.py", "tests/test_references.py")),
    Mutant("pretrain_resume_skips_optimizer", "pretrain --resume starts a fresh Adam", "agents/pretrain.py",
           'opt.load_state_dict(st["opt"])', "pass", ("tests/test_harness.py", "tests/test_kenet.py")),
    Mutant("renderer_resume_skips_rng", "train-renderer --resume draws new batches", "renderers/train.py",
           'rng.bit_generator.state = json.loads(state["rng"][rank])', "pass",
           ("tests/test_harness.py",)),
    Mutant("sb3_resume_skips_buffer", "SB3 --resume forgets its replay buffer", "agents/sb3.py",
           "model.load_replay_buffer(buffer_path)", "pass", ("tests/test_harness.py",)),
    Mutant("no_antialias", "Eq. 1 downscales without MATLAB's antialiasing", "blindsr_gym/degradation.py",
           "lr = imresize(blur(hr, kernels), 1.0 / scale)", "lr = imresize(blur(hr, kernels), 1.0 / scale, "
           "antialias=False)", ("tests/test_degradation.py", "tests/test_references.py")),
    Mutant("correlation_not_convolution", "the blur correlates instead of convolving", "blindsr_gym/degradation.py",
           "weight = kernels.flip(-1, -2)", "weight = kernels", ("tests/test_degradation.py",)),
    Mutant("vector_env_one_seed", "every sub-env of a vector env gets the same seed", "blindsr_gym/envs/vector.py",
           "seeds = [int(seed) + i for i in range(self.num_envs)]", "seeds = [int(seed)] * self.num_envs",
           ("tests/test_envs.py",)),
    Mutant("eq11_without_penalty", "the critic loss drops Eq. 11's sign penalty", "agents/ddpg.py",
           "return (F.relu(-gamma * q) + (r - q) ** 2).mean()", "return ((r - q) ** 2).mean()",
           ("tests/test_agents.py",)),
    Mutant("psnr_ignores_border", "PSNR scores the border it should crop", "blindsr_gym/metrics/fidelity.py",
           "    if crop_border:\n        a = a[", "    if False:\n        a = a[", ("tests/test_metrics.py",)),
    Mutant("builtin_bgr_again", "in-memory RGB arrays come out BGR again (issue 27)", "blindsr_gym/data.py",
           "        if bgr:\n", "        if True:\n", ("tests/test_colour_order.py", "tests/test_data.py")),
    Mutant("upscale_may_overwrite_inputs", "upscale no longer compares outputs with every input (issue 23)",
           "blindsr_gym/upscale.py", "    check_outputs_distinct(files, outs)\n", "",
           ("tests/test_reliability.py", "tests/test_upscale.py")),
    Mutant("upscale_ens_is_plain", "upscale's amnet-rl-ens renders with one view's width, not the 8 views' mean",
           "blindsr_gym/upscale.py", "    m = make_method(method, scale=scale, device=device, **kw)\n",
           "    m = make_method(method.removesuffix(\"-ens\"), scale=scale, device=device, **kw)\n",
           ("tests/test_upscale.py",)),
    Mutant("signal_ignored", "the renderer trainer ignores Ctrl-C/SIGTERM and runs on to its next checkpoint",
           "renderers/train.py", "        stop = stop_requested()  # Ctrl-C", "        stop = None  # Ctrl-C",
           ("tests/test_harness.py::test_a_signal_saves_the_step_under_way_and_a_resume_finishes_the_same_run",)),
    Mutant("ddpg_signal_state_without_episodes", "a DDPG run stopped between checkpoints re-seeds its env on resume "
           "instead of drawing its episodes again", "agents/ddpg.py",
           '    if state is not None and state.get("episodes"):', "    if False:",
           ("tests/test_harness.py::test_a_signal_saves_the_step_under_way_and_a_resume_finishes_the_same_run",)),
    Mutant("episode_sources_before_redraws", "an episode's source is its generator before the batch's first draw, "
           "so a replay image NIQE made the env draw again comes back as the one it replaced",
           "blindsr_gym/envs/vector.py", "return [ep.source for ep in self._episodes]",
           "return [dict(st) for st in self._drawn_from]",
           ("tests/test_envs.py::test_episode_sources_draw_the_observations_again_redrawn_episodes_too",)),
    Mutant("replay_images_unchecked", "a DDPG or SB3 resume takes whatever images its sources draw, on another "
           "dataset too", "agents/rollouts.py", "    if far.any():", "    if False:",
           ("tests/test_agents.py::test_replay_buffer_keeps_sources_not_images_and_checks_them_on_load",
            "tests/test_harness.py::test_sb3_replay_buffer_pickles_sources_and_a_resume_draws_the_images_again")),
    Mutant("sb3_buffer_not_redrawn", "an SB3 resume keeps the unpickled buffer without its images",
           "agents/sb3.py", "                rebuilt = model.replay_buffer.redraw(venv.observations)",
           '                rebuilt = {"regenerated": 0, "inexact": 0}',
           ("tests/test_harness.py::test_sb3_resume_restores_the_saved_model_and_continues_the_count",)),
    Mutant("critic_init_unseeded", "the critic on a frozen actor draws its first weights from the process's random "
           "state, so every --seed starts from the same critic", "agents/ddpg.py",
           "            torch.manual_seed(cfg.seed)        # random state", "            pass  # random state",
           ("tests/test_agents.py::test_the_seed_alone_sets_the_actor_feature_critics_first_weights",)),
    Mutant("digest_unchecked", "a checkpoint's SHA-256 is not compared with its card", "blindsr_gym/utils.py",
           "if want and file_sha256(path) != want:", "if False:", ("tests/test_reliability.py",)),
    Mutant("install_drops_evaluate", "pip install leaves blindsr_gym.evaluate out (found on the 2026-11-28 lease)",
           "setup.cfg", "    blindsr_gym.evaluate\n", "",
           ("tests/test_package.py::test_an_installed_copy_has_every_module_and_shipped_file",)),
    Mutant("niqe_no_pinv_fallback", "NIQE's Cholesky path has no fallback for a matrix it cannot factor",
           "blindsr_gym/metrics/niqe.py", "    if bad.any():", "    if False:", ("tests/test_metrics.py",)),
    Mutant("niqe_fused_fits_misordered", "NIQE's fused block features pair the fits with the wrong maps",
           "blindsr_gym/metrics/niqe.py", "        fits = [tuple(t[j] for t in fits) for j in range(5)]",
           "        fits = [tuple(t[j] for t in fits) for j in (0, 2, 1, 3, 4)]", ("tests/test_metrics.py",)),
    Mutant("amlayer_forgets_shift", "the AMLayer ignores conv2's folded bias", "renderers/amnet.py",
           "mean_in = mu if shift is None else mu + shift.float()", "mean_in = mu", ("tests/test_renderers.py",)),
    Mutant("code_terms_forget_shift", "AMNet's batched FC pass leaves conv2's folded bias out of beta",
           "renderers/amnet.py", "            b2 = torch.baddbmm(b2.unsqueeze(-1), w2[:, :, -c:], s).squeeze(-1)",
           "            pass", ("tests/test_renderers.py",)),
    Mutant("step_rewards_a_broken_render", "the vector step, waiting once for the device, forgets to check the "
           "action's render", "blindsr_gym/envs/vector.py",
           "                check_finite(sr, SR_WHAT)  # raises: broken weights must not become a reward",
           "                pass", ("tests/test_reliability.py",)),
    Mutant("failed_step_moves_generators", "a vector step whose render fails leaves its early draws in the "
           "generators", "blindsr_gym/envs/vector.py", "                r.bit_generator.state = st",
           "                pass", ("tests/test_reliability.py",)),
    Mutant("ddpg_resume_purges_its_curve", "a resumed DDPG run purges TensorBoard from its iteration number while "
           "it logs at episode counts", "agents/ddpg.py", "    writer = run.writer(start * per_iteration)",
           "    writer = run.writer(start)",
           ("tests/test_harness.py::test_a_run_split_by_a_resume_equals_the_uninterrupted_run",)),
    Mutant("compiled_blocks_ignored", "compile=True and --compile leave AMNet's blocks eager", "renderers/amnet.py",
           "        run = _compiled_run_block() if _COMPILED.get() else _run_block",
           "        run = _run_block", ("tests/test_renderers.py", "tests/test_envs.py")),
)

#: Large folders the tests only read: linked into the copy instead of copied.
LINKED = ("renderers/weights", "agents/weights", "checkpoints")


def _files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split("\n")
    return [f for f in out if f and (ROOT / f).is_file() and not f.startswith(LINKED)]


def make_copy(dest: Path) -> None:
    """The project in ``dest`` importable as ``blindsr_gym`` without installing it (agents/ and renderers/
    become sub-packages through links, as setup.cfg's package_dir maps them)."""
    for f in _files():
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    for d in LINKED:
        if (ROOT / d).exists():
            (dest / d).parent.mkdir(parents=True, exist_ok=True)
            (dest / d).symlink_to(ROOT / d)
    (dest / "blindsr_gym" / "agents").symlink_to(dest / "agents")
    (dest / "blindsr_gym" / "renderers").symlink_to(dest / "renderers")


def _env(dest: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(dest), PYTHONDONTWRITEBYTECODE="1")
    data = Path(os.environ.get("BLINDSR_DATA", ROOT.parent / "shared" / "data"))
    if data.is_dir():
        env["BLINDSR_DATA"] = str(data)  # the copy's ../shared/data does not exist
    return env


def run_tests(dest: Path, tests: tuple[str, ...], timeout: int) -> tuple[bool, str]:
    """``(passed, first failing test or reason)`` of ``pytest -x`` on ``tests`` in the copy."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-W", "ignore", *tests]
    try:
        r = subprocess.run(cmd, cwd=dest, env=_env(dest), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout} s"
    if r.returncode == 0:
        return True, ""
    if "during collection" in r.stdout:  # a mutant that does not even import proves nothing
        raise RuntimeError(f"the tests could not be collected: {r.stdout.strip().splitlines()[-1]}")
    failed = [ln.split(" ")[1] for ln in r.stdout.splitlines() if ln.startswith(("FAILED ", "ERROR "))]
    return False, failed[0] if failed else r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-300:]


def check_applies(m: Mutant, root: Path = ROOT) -> None:
    text = (root / m.file).read_text()
    if text.count(m.old) != 1:
        raise LookupError(f"{m.name}: its text occurs {text.count(m.old)} times in {m.file} (must be once): "
                          "the code moved; update the mutant in scripts/mutation_check.py")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="+", default=None, help="run these mutants (names from --list)")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--timeout", type=int, default=600, help="seconds per test run")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:<32} {m.file:<28} {m.what}")
        return 0
    chosen = [m for m in MUTANTS if args.only is None or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTANTS}
    if unknown:
        print(f"unknown mutant(s) {sorted(unknown)}; see --list", file=sys.stderr)
        return 2
    stale = []
    for m in chosen:
        try:
            check_applies(m)
        except LookupError as e:
            stale.append(str(e))
    if stale:
        print("STALE:\n  " + "\n  ".join(stale), file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="blindsr-mutants-") as tmp:
        dest = Path(tmp)
        make_copy(dest)
        probe = subprocess.run([sys.executable, "-c", "import blindsr_gym.agents as a; print(a.__file__)"],
                               cwd=dest, env=_env(dest), capture_output=True, text=True)
        if not probe.stdout.startswith(str(dest)):
            print(f"the copy does not import from {dest}: {probe.stdout or probe.stderr}", file=sys.stderr)
            return 2
        tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        t0 = time.perf_counter()
        ok, why = run_tests(dest, tests, args.timeout * 2)
        print(f"baseline (no mutant): {'passes' if ok else 'FAILS: ' + why} ({time.perf_counter() - t0:.0f} s)")
        if not ok:
            return 2
        for m in chosen:
            path = dest / m.file
            original = path.read_text()
            path.write_text(original.replace(m.old, m.new))
            t0 = time.perf_counter()
            try:
                passed, by = run_tests(dest, m.tests, args.timeout)
            except RuntimeError as e:
                print(f"BROKEN    {m.name}: {e}; fix the mutant so that it is a plausible bug", file=sys.stderr)
                return 2
            finally:
                path.write_text(original)
            results.append({"mutant": m.name, "what": m.what, "killed": not passed, "by": by,
                            "seconds": round(time.perf_counter() - t0, 1)})
            print(f"{'killed  ' if not passed else 'SURVIVED'}  {m.name:<32} {by or '(all tests passed)'} "
                  f"[{results[-1]['seconds']:.0f} s]", flush=True)
    killed = sum(r["killed"] for r in results)
    print(f"\n{killed} of {len(results)} mutants killed in {time.perf_counter() - t_start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"command": "python scripts/mutation_check.py "
                                               + " ".join(sys.argv[1:]), "results": results}, indent=1) + "\n")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
