"""The evaluation harness on the built-in images (tiny budgets)."""

import json
from pathlib import Path

import pytest
import torch

from blindsr_gym.cli import main
from blindsr_gym.data import builtin
from blindsr_gym.degradation import degrade, imresize
from blindsr_gym.evaluate import evaluate, make_method, parse_kernels, summarize, to_markdown
from blindsr_gym.kernels import gaussian8_sigmas, isotropic_gaussian
from blindsr_gym.metrics import psnr
from blindsr_gym.renderers import build_renderer, load_renderer, save_renderer
from blindsr_gym.utils import to_tensor


def test_kernel_settings():
    g8 = parse_kernels("gaussian8")
    assert [label for label, _ in g8] == [f"sigma={s:.2f}" for s in gaussian8_sigmas(4)]
    assert g8[0][0] == "sigma=1.80" and g8[-1][0] == "sigma=3.20"
    t1 = parse_kernels("sigma:0.2,1.3,2.6")
    torch.testing.assert_close(t1[1][1], isotropic_gaussian(1.3))
    for bad in ("sigma:", "sigma:a", "sigma:-1", "gauss8"):
        with pytest.raises(ValueError):
            parse_kernels(bad)


def test_bicubic_record_matches_direct_computation():
    src = builtin(mod=4)
    records = evaluate({"builtin": src}, parse_kernels("sigma:2.0"), [make_method("bicubic")], ["psnr"],
                       max_images=2, progress=False)
    assert len(records) == 1 and records[0]["images"] == 2
    direct = []
    for i in range(2):
        hr = to_tensor(src[i])
        sr = imresize(degrade(hr, isotropic_gaussian(2.0), 4), 4.0).clamp(0, 1)
        direct.append(float(psnr(sr, hr, crop_border=4)[0]))
    assert records[0]["psnr"] == pytest.approx(sum(direct) / 2, abs=1e-9)


def test_gt_method_uses_the_true_kernel_code(tmp_path):
    torch.manual_seed(0)
    path = save_renderer(build_renderer("amnet", num_blocks=1), tmp_path / "r.safetensors")
    m = make_method("gt", renderer=str(path))
    seen = []
    records = evaluate({"builtin": builtin(mod=4)}, parse_kernels("sigma:1.0,3.0"), [make_method("bicubic"), m],
                       ["psnr", "ssim"], max_images=1, progress=False,
                       on_result=lambda *a: seen.append(a[0]))
    assert len(records) == 4 and seen.count("gt") == 2
    summary = summarize(records, ["psnr", "ssim"])
    assert {s["method"] for s in summary} == {"bicubic", "gt"} and all(s["kernels"] == 2 for s in summary)
    md = to_markdown(records, ["psnr", "ssim"])
    assert "| method | builtin |" in md and "| gt |" in md
    with pytest.raises(ValueError, match="unknown method"):
        make_method("ikc")


def test_cli_json_markdown_and_card(tmp_path, capsys):
    torch.manual_seed(0)
    path = save_renderer(build_renderer("amnet", num_blocks=1), tmp_path / "r.safetensors", {"training": {}})
    rc = main(["evaluate", "--data", "builtin", "--kernels", "sigma:2.0", "--methods", "bicubic,gt",
               "--renderer", str(path), "--max-images", "1", "--json", str(tmp_path / "e.json"),
               "--markdown", str(tmp_path / "e.md"), "--card-key", "tiny", "--no-progress",
               "--log", str(tmp_path / "e.jsonl")])
    assert rc == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["command"].startswith("blindsr-gym evaluate") and len(result["records"]) == 2
    assert set(result["method_s"]) == {"bicubic", "gt"} and len((tmp_path / "e.jsonl").read_text().splitlines()) == 3
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["evaluation"]["tiny"]["summary"] == result["summary"]
    assert card["evaluation"]["tiny"]["method_s"] == result["method_s"]
    assert main(["evaluate", "--data", "builtin", "--resume", "--no-progress"]) == 2
    assert "--resume continues a --log" in capsys.readouterr().err
    assert "| bicubic |" in (tmp_path / "e.md").read_text()
    assert main(["evaluate", "--data", str(tmp_path / "nope"), "--no-progress"]) == 2
    assert "not found" in capsys.readouterr().err


def test_dan_method(tmp_path):
    torch.manual_seed(0)
    path = save_renderer(build_renderer("dan", num_blocks=1, loops=2), tmp_path / "dan.safetensors")
    records = evaluate({"builtin": builtin(mod=4)}, parse_kernels("sigma:2.0"), [make_method("dan", dan=str(path))],
                       ["psnr"], max_images=1, progress=False)
    # the record is DAN's last restoration of the degraded image, scored against the HR image
    dan = load_renderer(path)
    hr = to_tensor(builtin(mod=4)[0])
    with torch.no_grad():
        sr = dan.super_resolve(degrade(hr, isotropic_gaussian(2.0), 4))
    assert records[0]["method"] == "dan"
    assert records[0]["psnr"] == pytest.approx(float(psnr(sr.clamp(0, 1), hr, crop_border=4)[0]), abs=1e-9)
    with pytest.raises(ValueError, match="dan"):
        make_method("dan", dan=str(save_renderer(build_renderer("amnet", num_blocks=1), tmp_path / "a.safetensors")))


def test_cost_table_matches_the_paper_macs():
    from blindsr_gym.evaluate import cost_table

    rows = {r["method"]: r for r in cost_table(repeats=1)}
    assert rows["AMNet-RL"]["macs_G"] == pytest.approx(6.6, abs=0.05)  # Table 6: 6.6 G
    assert rows["DAN (4 loops)"]["macs_G"] == pytest.approx(78.1, abs=0.5)  # Table 6: 78 G
    assert rows["AMNet-RL"]["params"] == 379_107 + 1_595_248  # paper: 1,982K
    assert rows["AMNet_L-RL"]["macs_G"] > rows["AMNet-RL"]["macs_G"]
    assert rows["KENet + AMNet"]["macs_G"] == pytest.approx(5.10 + 0.575, abs=0.02)  # AMNet + KENet at 64x64
    assert all(r["latency_s"] > 0 for r in rows.values())
    assert not any("latency_graph_s" in r or "graph_error" in r for r in rows.values())  # CUDA graphs: GPU only


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="CUDA graphs need a GPU; there gpu_suite.sh's cost_table records graph_max_abs_diff too")
def test_cuda_graphed_amnet_equals_eager():
    from blindsr_gym.renderers import load_renderer
    from blindsr_gym.utils import cuda_graphed

    model = load_renderer("amnet_x4", device="cuda")
    g = torch.Generator().manual_seed(0)
    lr, code = torch.rand(1, 3, 64, 64, generator=g).cuda(), torch.zeros(1, 15).cuda()
    with torch.no_grad():
        run = cuda_graphed(lambda x: model(x, code), lr)
        for _ in range(2):
            x = torch.rand(1, 3, 64, 64, generator=g).cuda()
            torch.testing.assert_close(run(x), model(x, code), rtol=0, atol=1e-5)


class _FixedKernel(torch.nn.Module):
    """A stand-in KENet that always answers the same kernel."""

    def __init__(self, kernel):
        super().__init__()
        self.kernel_size, self.kernel = kernel.shape[-1], kernel

    def forward(self, lr):
        return self.kernel.expand(lr.shape[0], -1, -1)


class _FixedAction(torch.nn.Module):
    def __init__(self, action):
        super().__init__()
        self.action = action

    def forward(self, lr):
        return self.action.expand(lr.shape[0], -1)


def test_blind_methods_with_oracle_estimators_match_the_true_kernel():
    torch.manual_seed(0)
    amnet = build_renderer("amnet", num_blocks=1).eval()
    k = isotropic_gaussian(2.0)
    action = amnet.codec.code_to_action(amnet.codec.encode(k[None]))
    methods = [make_method("gt", renderer=amnet), make_method("kenet", renderer=amnet, kenet=_FixedKernel(k)),
               make_method("amnet-rl", renderer=amnet, actor=_FixedAction(action))]
    records = {r["method"]: r for r in evaluate({"builtin": builtin(mod=4)}, parse_kernels("sigma:2.0"), methods,
                                                ["psnr"], max_images=2, progress=False)}
    # the oracle KENet hands the renderer the true kernel's code: identical output to 'gt'
    assert records["kenet"]["psnr"] == pytest.approx(records["gt"]["psnr"], abs=1e-9)
    assert records["kenet"]["kernel_psnr"] > 100  # exact kernel (PSNR capped by float error only)
    assert "kernel_psnr" not in records["gt"]  # non-blind: no estimate
    # the oracle actor answers the true code; its decoded kernel is the codec's PCA reconstruction
    assert records["amnet-rl"]["psnr"] == pytest.approx(records["gt"]["psnr"], abs=1e-3)
    assert records["amnet-rl"]["kernel_psnr"] > 60  # the isotropic codec reconstructs sigma=2 almost exactly
    md = to_markdown(list(records.values()), ["psnr"])
    assert "kernel PSNR (dB)" in md and "| kenet |" in md.split("kernel PSNR")[1]
    assert "| gt |" not in md.split("kernel PSNR")[1]
    # a wrong guess scores a lower kernel PSNR
    wrong = make_method("kenet", renderer=amnet, kenet=_FixedKernel(isotropic_gaussian(0.6)))
    rec = evaluate({"builtin": builtin(mod=4)}, parse_kernels("sigma:2.0"), [wrong], ["psnr"], max_images=1,
                   progress=False)[0]
    assert rec["kernel_psnr"] < 20


def test_fixed_method_is_the_true_kernel_only_at_its_width():
    torch.manual_seed(0)
    amnet = build_renderer("amnet", num_blocks=1).eval()
    methods = [make_method("gt", renderer=amnet), make_method("fixed", renderer=amnet, fixed_sigma=2.0)]
    recs = {(r["method"], r["kernel"]): r for r in evaluate({"builtin": builtin(mod=4)}, parse_kernels("sigma:2.0,3.0"),
                                                            methods, ["psnr"], max_images=1, progress=False)}
    # at its own width the fixed code is the true code: the same SR as 'gt'
    assert recs[("fixed", "sigma=2.00")]["psnr"] == pytest.approx(recs[("gt", "sigma=2.00")]["psnr"], abs=1e-9)
    assert "kernel_psnr" not in recs[("fixed", "sigma=2.00")]  # a constant is not an estimate
    # at another width it still renders with sigma 2.0, not with the true 3.0
    lr = degrade(to_tensor(builtin(mod=4)[0])[..., :64, :64], isotropic_gaussian(3.0), 4)
    sr = methods[1].fn(lr, isotropic_gaussian(3.0))
    with torch.no_grad():
        code = lambda s: amnet.codec.encode(isotropic_gaussian(s)[None])  # noqa: E731
        torch.testing.assert_close(sr, amnet(lr, code(2.0)), rtol=0, atol=0)
        assert (sr - amnet(lr, code(3.0))).abs().max() > 1e-4
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="fixed-sigma"):
            make_method("fixed", renderer=amnet, fixed_sigma=bad)


def test_cli_figures_card_key_and_unknown_method(tmp_path, capsys):
    from blindsr_gym.agents.kenet import KENet, save_kenet

    torch.manual_seed(0)
    rpath = save_renderer(build_renderer("amnet", num_blocks=1), tmp_path / "r.safetensors")
    kpath = save_kenet(KENet(channels=8, stages=2, fc=16), tmp_path / "k.safetensors", card={"training": {}})
    rc = main(["evaluate", "--data", "builtin", "--kernels", "sigma:2.0,3.0", "--methods", "bicubic,gt,kenet",
               "--renderer", str(rpath), "--kenet", str(kpath), "--metrics", "psnr", "--max-images", "1",
               "--figures", str(tmp_path / "fig"), "--figure-crop", "64", "--card-key", "smoke", "--no-progress"])
    assert rc == 0
    import cv2

    figs = sorted((tmp_path / "fig").glob("*.png"))
    assert len(figs) == 2  # one per (dataset, kernel)
    img = cv2.imread(str(figs[0]))
    assert img.shape == (64 + 22, 5 * 64 + 4 * 4, 3)  # LR, bicubic, gt, kenet, HR; 22 px labels, 4 px gaps
    kcard = json.loads(kpath.with_suffix(".json").read_text())
    assert kcard["evaluation"]["smoke"]["summary"][0]["kernels"] == 2
    assert "kernel_psnr" in [r for r in kcard["evaluation"]["smoke"]["summary"] if r["method"] == "kenet"][0]
    rcard = json.loads(rpath.with_suffix(".json").read_text())
    assert "smoke" in rcard["evaluation"]  # 'gt' ran with this renderer
    capsys.readouterr()
    assert main(["evaluate", "--data", "builtin", "--methods", "bicubic,nope", "--no-progress"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    assert main(["evaluate", "--data", "builtin", "--methods", "kenet", "--kenet", str(tmp_path / "x.safetensors"),
                 "--renderer", str(rpath), "--no-progress"]) == 2
    assert "KENet checkpoint not found" in capsys.readouterr().err


def _script(name):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_table2_from_cards_merges_and_checks_shared_methods(tmp_path):
    """Records of several cards merge into one table; a method two cards both measured must agree."""
    t2 = _script("table2_from_cards")

    def card(rows, cmd):
        recs = [dict(method=m, dataset=d, kernel=k, images=5, psnr=p, ssim=s) for m, d, k, p, s in rows]
        return {"evaluation": {"gaussian8": {"command": cmd, "records": recs}}}

    a = card([("bicubic", "Set5", "sigma=1.80", 26.0, 0.7), ("gt", "Set5", "sigma=1.80", 31.0, 0.87),
              ("bicubic", "Set5", "sigma=3.20", 25.0, 0.69), ("gt", "Set5", "sigma=3.20", 30.0, 0.85)], "eval A")
    b = card([("dan", "Set5", "sigma=1.80", 28.0, 0.8), ("bicubic", "Set5", "sigma=1.80", 26.0, 0.7),
              ("dan", "Set5", "sigma=3.20", 27.0, 0.79)], "eval B")
    records, metrics, commands = t2.merge([("a", a), ("b", b)], "gaussian8")
    assert metrics == ["psnr", "ssim"] and commands == ["eval A", "eval B"]
    assert [r["method"] for r in records] == ["bicubic", "bicubic", "gt", "gt", "dan", "dan"]
    p = tmp_path / "a.json"
    p.write_text(json.dumps(a))
    q = tmp_path / "b.json"
    q.write_text(json.dumps(b))
    t2.main([str(p), str(q), "--out", str(tmp_path / "t2")])
    md = (tmp_path / "t2.md").read_text()
    assert "| dan | 27.50 / 0.7950 |" in md and "| gt | 30.50 / 0.8600 |" in md and "`eval B`" in md
    bad = card([("bicubic", "Set5", "sigma=1.80", 26.5, 0.7)], "eval C")
    with pytest.raises(ValueError, match="differs from another card"):
        t2.merge([("a", a), ("c", bad)], "gaussian8")
    with pytest.raises(ValueError, match="no evaluation 'table1'"):
        t2.merge([("a", a)], "table1")
    # an `evaluate --json` file (a method without a model card) merges as it is, whatever the key
    fixed = {"command": "eval F", "records": [dict(method="fixed", dataset="Set5", kernel="sigma=1.80", images=5,
                                                   psnr=29.0, ssim=0.8)]}
    records, _, commands = t2.merge([("a", a), ("f", fixed)], "gaussian8")
    assert [r["method"] for r in records] == ["bicubic", "bicubic", "gt", "gt", "fixed"] and commands[-1] == "eval F"
    # Table 4: two renderers' gt rows clash unless one is relabelled
    other = card([("bicubic", "Set5", "sigma=1.80", 26.0, 0.7), ("gt", "Set5", "sigma=1.80", 30.0, 0.85)], "eval D")
    with pytest.raises(ValueError, match="differs from another card"):
        t2.merge([("a", a), ("d", other)], "gaussian8")
    records, _, _ = t2.merge([("a", a), ("d", other)], "gaussian8", rename={("d", "gt"): "gt-adain"})
    assert [(r["method"], r["psnr"]) for r in records if r["kernel"] == "sigma=1.80"] == [
        ("bicubic", 26.0), ("gt", 31.0), ("gt-adain", 30.0)]
    r = tmp_path / "d.json"
    r.write_text(json.dumps(other))
    t2.main([str(p), str(r), "--out", str(tmp_path / "t4"), "--rename", f"{r}:gt=gt-adain"])
    assert "| gt-adain | 30.00 / 0.8500 |" in (tmp_path / "t4.md").read_text()
    with pytest.raises(SystemExit, match="--rename"):
        t2.main([str(p), str(r), "--out", str(tmp_path / "t4"), "--rename", "nocard:gt=x"])


def test_per_image_log_resumes_to_the_uninterrupted_means(tmp_path):
    torch.manual_seed(0)
    path = save_renderer(build_renderer("amnet", num_blocks=1), tmp_path / "r.safetensors")
    data = {"builtin": builtin(mod=4)}
    kernels = parse_kernels("sigma:1.0,2.5")
    methods = [make_method("bicubic"), make_method("gt", renderer=str(path))]
    full = evaluate(data, kernels, methods, ["psnr", "ssim"], max_images=3, progress=False)
    log = tmp_path / "e.jsonl"
    seen = []
    logged = evaluate(data, kernels, methods, ["psnr", "ssim"], max_images=3, progress=False, log=log,
                      on_result=lambda *a: seen.append(a[:4]))
    assert logged == full and len(seen) == 12
    lines = log.read_text().splitlines()
    assert len(lines) == 1 + 12 and json.loads(lines[0])["header"]["methods"]["bicubic"] == "bicubic"
    with pytest.raises(FileExistsError, match="--resume"):
        evaluate(data, kernels, methods, ["psnr", "ssim"], max_images=3, progress=False, log=log)
    # stopped after 5 entries, the 6th half written: only the rest is computed, the means are identical
    log.write_text("\n".join(lines[:6]) + "\n" + lines[6][:20])
    seen.clear()
    secs = {}
    resumed = evaluate(data, kernels, methods, ["psnr", "ssim"], max_images=3, progress=False, log=log,
                       resume=True, on_result=lambda *a: seen.append(a[:4]), seconds=secs)
    assert resumed == full and len(seen) == 12 - 5 and set(secs) == {"bicubic", "gt"}
    assert len(log.read_text().splitlines()) == 1 + 12
    # nothing left: no method runs
    seen.clear()
    assert evaluate(data, kernels, methods, ["psnr", "ssim"], max_images=3, progress=False, log=log,
                    resume=True, on_result=lambda *a: seen.append(a)) == full and seen == []


def test_per_image_log_refuses_to_mix_settings(tmp_path):
    torch.manual_seed(0)
    path = save_renderer(build_renderer("amnet", num_blocks=1), tmp_path / "r.safetensors")
    other = save_renderer(build_renderer("amnet", num_blocks=1), tmp_path / "o.safetensors")
    data = {"builtin": builtin(mod=4)}
    kernels = parse_kernels("sigma:2.0")
    log = tmp_path / "e.jsonl"
    evaluate(data, kernels, [make_method("gt", renderer=str(path))], ["psnr"], max_images=1, progress=False, log=log)
    run = dict(max_images=1, progress=False, log=log, resume=True)
    with pytest.raises(ValueError, match="other weights"):
        evaluate(data, kernels, [make_method("gt", renderer=str(other))], ["psnr"], **run)
    with pytest.raises(ValueError, match="metrics"):
        evaluate(data, kernels, [make_method("gt", renderer=str(path))], ["psnr", "ssim"], **run)
    with pytest.raises(ValueError, match="kernels"):
        evaluate(data, parse_kernels("sigma:2.1"), [make_method("gt", renderer=str(path))], ["psnr"], **run)
    with pytest.raises(ValueError, match="per-image log"):
        evaluate(data, kernels, [make_method("bicubic")], ["psnr"], max_images=1, progress=False, resume=True)
    # a method added later is computed for every image and recorded in the header
    recs = evaluate(data, kernels, [make_method("gt", renderer=str(path)), make_method("bicubic")], ["psnr"], **run)
    assert [r["method"] for r in recs] == ["gt", "bicubic"]
    assert set(json.loads(log.read_text().splitlines()[0])["header"]["methods"]) == {"gt", "bicubic"}
    # the same name for another image is refused, not mixed in
    entries = [json.loads(x) for x in log.read_text().splitlines()]
    entries[1]["hr"] = "0" * 16
    log.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    with pytest.raises(ValueError, match="differs"):
        evaluate(data, kernels, [make_method("gt", renderer=str(path))], ["psnr"], **run)


def test_amnet_rl_ens_renders_the_self_ensembles_width(tmp_path):
    from blindsr_gym.agents import Actor, SelfEnsemble

    torch.manual_seed(0)
    renderer = build_renderer("amnet", num_blocks=1)
    actor = Actor(head="sigma", num_blocks=1, codec=renderer.codec).eval()
    data, kernels = {"builtin": builtin(mod=4)}, parse_kernels("sigma:2.0")
    ens = evaluate(data, kernels, [make_method("amnet-rl-ens", renderer=renderer, actor=actor)], ["psnr"],
                   max_images=1, progress=False)
    wrapped = make_method("amnet-rl", renderer=renderer, actor=SelfEnsemble(actor))
    ref = evaluate(data, kernels, [wrapped], ["psnr"], max_images=1, progress=False)
    plain = evaluate(data, kernels, [make_method("amnet-rl", renderer=renderer, actor=actor)], ["psnr"],
                     max_images=1, progress=False)
    assert ens[0]["method"] == "amnet-rl-ens" and ens[0]["psnr"] == pytest.approx(ref[0]["psnr"], abs=1e-9)
    assert ens[0]["kernel_psnr"] != pytest.approx(plain[0]["kernel_psnr"], abs=1e-6)
    with pytest.raises(ValueError, match="sigma-head"):
        make_method("amnet-rl-ens", renderer=renderer, actor=Actor(num_blocks=1))


def test_table5_seeds_groups_runs_and_says_when_a_difference_is_within_the_spread(tmp_path):
    """Two groups of two 'seeds' (shipped actors copied into DDPG-like logdirs, so each group's seeds agree
    exactly): mean ± std per group, the verdict, the per-run logs reused on a second call, and refusals."""
    import shutil

    from blindsr_gym.errors import InputError
    from blindsr_gym.utils import file_sha256

    t5 = _script("table5_seeds")
    weights = Path(__file__).resolve().parents[1] / "agents" / "weights"
    card = json.loads((weights / "actor_niqe_x4.json").read_text())

    def make_run(name, actor, rewards, seed, env_id="BlindSR-NIQE-v0"):
        d = tmp_path / name
        d.mkdir()
        shutil.copy(weights / f"{actor}.safetensors", d / "actor.safetensors")
        c = json.loads(json.dumps(card))
        c["sha256"] = file_sha256(d / "actor.safetensors")
        c["training"] = {**c["training"], "env_id": env_id, "seed": seed}
        c["validation_history"] = [{"env_steps": 64 * (i + 1), "reward": r} for i, r in enumerate(rewards)]
        (d / "actor.json").write_text(json.dumps(c))
        return str(d)

    a = [make_run("a_s0", "actor_niqe_x4", [-1.0, -0.5], 0), make_run("a_s1", "actor_niqe_x4", [-1.0, -0.3], 1)]
    b = [make_run("b_s0", "actor_psnr_x4", [-1.0, 0.1], 0), make_run("b_s1", "actor_psnr_x4", [-0.8, 0.3], 1)]
    common = ["--data", "builtin", "--kernels", "sigma:2.0", "--max-images", "1", "--logs", str(tmp_path / "logs"),
              "--device", "cpu", "--no-progress"]
    out = tmp_path / "t5"
    t5.main(["--group", "Eq. 10", *a, "--group", "Eq. 11", *b, *common, "--out", str(out)])
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["metric"] == "niqe" and doc["lower_better"] and doc["reference"]["method"] == "amgan-gt"
    g10, g11 = doc["groups"]["Eq. 10"], doc["groups"]["Eq. 11"]
    m10, s10 = g10["scores"]["builtin"]["niqe"]
    m11, s11 = g11["scores"]["builtin"]["niqe"]
    assert s10 == s11 == 0.0 and m10 == g10["runs"][0]["scores"]["builtin"]["niqe"] and m10 != m11
    assert g10["final_reward"] == pytest.approx([-0.4, 0.1414213562], abs=1e-9)  # mean, std (n - 1) of -0.5, -0.3
    (c,) = doc["comparisons"]
    assert c["b_minus_a"] == pytest.approx(m11 - m10) and not c["within_spread"]
    md = out.with_suffix(".md").read_text()
    assert f"| Eq. 10 | 2 | {m10:.3f} ± 0.000 |" in md and "larger than the seeds' spread" in md
    assert "| a_s1 | Eq. 10 | 1 | 4096 |" in md and out.with_suffix(".png").stat().st_size > 0
    # a second call reads every score from the logs (nothing is appended to them)
    logs = {p.name: p.read_text() for p in (tmp_path / "logs").iterdir()}
    assert len(logs) == 5
    t5.main(["--group", "Eq. 10", *a, "--group", "Eq. 11", *b, *common, "--out", str(out)])
    assert {p.name: p.read_text() for p in (tmp_path / "logs").iterdir()} == logs
    # a spread larger than the difference is reported as such
    doc["groups"]["Eq. 10"]["scores"]["builtin"]["niqe"] = [m10, abs(m11 - m10) * 2]
    (c,) = t5.compare(doc["groups"], ["builtin"], "niqe")
    assert c["within_spread"] and "no difference is claimed" in t5.markdown({**doc, "comparisons": [c]})
    # each group against the true kernel: its mean minus the reference's, against its own std (0 here)
    ref = doc["reference"]["scores"]["builtin"]["niqe"]
    by_group = {c["group"]: c for c in doc["against_reference"]}
    assert by_group["Eq. 10"]["minus_reference"] == pytest.approx(m10 - ref) and m10 != ref
    assert not by_group["Eq. 10"]["within_spread"]
    side = "better" if m10 < ref else "worse"
    assert f"Eq. 10 − true kernel (amgan-gt) = {m10 - ref:+.3f} NIQE, std 0.000: larger than the seeds' " \
        f"spread: Eq. 10 is {side}." in md
    widened = {"Eq. 10": {**g10, "scores": {"builtin": {"niqe": [m10, abs(m10 - ref) * 2]}}}}
    (c,) = t5.against_reference(widened, doc["reference"]["scores"], ["builtin"], "niqe")
    assert c["within_spread"]
    # one group alone: no pairs to compare, only the reference verdict (its scores come from the logs)
    t5.main(["--group", "only", *a, *common, "--out", str(out)])
    one = json.loads(out.with_suffix(".json").read_text())
    assert one["comparisons"] == [] and [c["group"] for c in one["against_reference"]] == ["only"]
    assert one["against_reference"][0]["minus_reference"] == pytest.approx(m10 - ref)
    with pytest.raises(InputError, match="names no run"):
        t5.main(["--group", "only", *common, "--out", str(out)])
    other = make_run("c_s0", "actor_psnr_x4", [0.0], 0, env_id="BlindSR-PSNR-v0")
    with pytest.raises(InputError, match="the runs differ in method"):
        t5.main(["--group", "x", *a, "--group", "y", other, *common, "--out", str(out)])
