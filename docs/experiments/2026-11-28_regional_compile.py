"""How close AMNet's renders with compiled blocks are to the eager ones, and how many compilations they take.

    python docs/experiments/2026-11-28_regional_compile.py > docs/experiments/2026-11-28_regional_compile.json

amnet_x4, 8 random 64x64 LR images with random in-box codes, on the CPU: the float32 render eager and compiled
(renderers.compiled_blocks), and the bf16-autocast renders eager and compiled, each against the float32 eager
render. Also the compilations dynamo made for the 16 blocks and the first compiled call's time.
"""

import json
import sys
import time

import torch

from blindsr_gym.renderers import compiled_blocks, load_renderer


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    m = load_renderer("amnet_x4").to(memory_format=torch.channels_last)
    lr = torch.rand(8, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    code = m.codec.code_low + (m.codec.code_high - m.codec.code_low) * torch.rand(8, 15).numpy()
    code = torch.as_tensor(code, dtype=torch.float32)
    torch._dynamo.utils.counters.clear()
    out = {"command": "python " + " ".join(sys.argv), "torch": torch.__version__, "threads": 2}
    with torch.inference_mode():
        ref = m(lr, code)
        t = time.perf_counter()
        with compiled_blocks():
            fp32_compiled = m(lr, code)
        out["first_compiled_call_s"] = round(time.perf_counter() - t, 2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16_eager = m(lr, code).float()
            with compiled_blocks():
                bf16_compiled = m(lr, code).float()
    out["compilations"] = dict(torch._dynamo.utils.counters["stats"])

    def dist(x):
        d = (x - ref).abs()
        return {"max": float(d.max()), "mean": float(d.mean())}

    out["vs_fp32_eager"] = {"fp32_compiled": dist(fp32_compiled), "bf16_eager": dist(bf16_eager),
                            "bf16_compiled": dist(bf16_compiled)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
