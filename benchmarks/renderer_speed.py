"""AMNet speed on this machine, side by side; prints JSON.

    python benchmarks/renderer_speed.py [--threads 2] [--repeats 3]

* training: seconds per Adam step at batch 16 with 48x48 LR patches, fp32 against bf16 autocast
  (both channels-last), the setting of the shipped CPU run, and the ratio;
* inference: images/s at batch 1, 8 and 64 (64x64 LR), fp32 and bf16, channels-last, and the
  batch-64 / batch-8 ratio (why the env renders in chunks of 8 on CPU).
Best of --repeats after a warm-up; random weights (speed does not depend on them).
"""

import argparse
import json
import platform
import sys
import time

import torch

from blindsr_gym.renderers import build_renderer
from blindsr_gym.utils import resolve_device


def best(fn, repeats):
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    resolve_device("cpu")  # the CPU set-up every entry point has (tune_cpu_malloc)
    g = torch.Generator().manual_seed(0)
    res = {"command": "python " + " ".join(sys.argv), "torch": torch.__version__, "threads": args.threads,
           "cpu": platform.processor() or platform.machine()}
    model = build_renderer("amnet").to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 2e-4)
    lr = torch.rand(16, 3, 48, 48, generator=g).contiguous(memory_format=torch.channels_last)
    hr = torch.rand(16, 3, 192, 192, generator=g)
    code = torch.zeros(16, 15)
    for prec in ("fp32", "bf16"):
        def step(prec=prec):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
                sr = model(lr, code)
            loss = (sr.float() - hr).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        res[f"train_s_per_step_{prec}"] = best(step, args.repeats)
    res["train_fp32_over_bf16"] = res["train_s_per_step_fp32"] / res["train_s_per_step_bf16"]
    model.eval()
    for prec in ("fp32", "bf16"):
        for b in (1, 8, 64):
            x = torch.rand(b, 3, 64, 64, generator=g).contiguous(memory_format=torch.channels_last)
            c = torch.zeros(b, 15)

            def fwd(x=x, c=c, prec=prec):
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
                    model(x, c)
            res[f"render_img_per_s_{prec}_batch{b}"] = b / best(fwd, args.repeats)
        res[f"render_batch64_over_batch8_{prec}"] = (res[f"render_img_per_s_{prec}_batch64"]
                                                     / res[f"render_img_per_s_{prec}_batch8"])
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}, indent=2))


if __name__ == "__main__":
    main()
