"""Metric throughput, ours against pyiqa and scikit-image in one run; prints JSON.

    python benchmarks/metrics.py [--batch 64] [--size 256] [--threads 2] [--repeats 3] [--sweep-passes]

A batch of RGB images of size x size (the SR output of a 64x64 LR patch at x4 by default),
cut from the built-in photographs. Reports images/second (best of --repeats) and the ratio
ours / alternative. pyiqa (optional extra) is skipped with a note when absent. ``--sweep-passes`` also
times our PSNR, SSIM and NIQE at 1 to --batch images per pass on the CPU (the pass sizes the metrics use
were chosen from it).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
import torch

from blindsr_gym.data import builtin
from blindsr_gym.degradation import imresize
from blindsr_gym.metrics import niqe, psnr, ssim
from blindsr_gym.metrics.color import rgb_to_y
from blindsr_gym.utils import resolve_device, to_tensor


def rate(fn, n, repeats):
    fn()  # warm-up (caches, allocator)
    best = min(_timed(fn) for _ in range(repeats))
    return n / best, best


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sweep-passes", action="store_true", help="also time 1..batch images per pass (CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    resolve_device("cpu")  # the CPU set-up every entry point has (tune_cpu_malloc)
    rng = np.random.default_rng(0)
    src = builtin()
    hr = torch.cat([to_tensor(src.random_crop(rng, args.size)[0]) for _ in range(args.batch)])
    sr = imresize(imresize(hr, 0.25), 4.0).clamp(0, 1)
    n = args.batch
    res: dict = {"command": "python " + " ".join(sys.argv), "batch": n, "size": args.size,
                 "threads": args.threads, "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
                 "unit": "images/s (best of repeats)"}

    ours_niqe, _ = rate(lambda: niqe(sr), n, args.repeats)
    ours_psnr, _ = rate(lambda: psnr(sr, hr), n, args.repeats)
    ours_ssim, _ = rate(lambda: ssim(sr, hr), n, args.repeats)
    res["ours"] = {"niqe": round(ours_niqe, 1), "psnr": round(ours_psnr, 1), "ssim": round(ours_ssim, 1)}

    # scikit-image on the same Y channel, one image at a time (its API is per image)
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ya = rgb_to_y(sr)[:, 0, 4:-4, 4:-4].numpy()
    yb = rgb_to_y(hr)[:, 0, 4:-4, 4:-4].numpy()
    pairs = list(zip(ya, yb, strict=True))
    sk_psnr, _ = rate(lambda: [peak_signal_noise_ratio(b, a, data_range=255) for a, b in pairs], n, args.repeats)
    sk_ssim, _ = rate(lambda: [structural_similarity(b, a, data_range=255, gaussian_weights=True, sigma=1.5,
                                                     use_sample_covariance=False) for a, b in pairs],
                      n, args.repeats)
    res["skimage"] = {"psnr": round(sk_psnr, 1), "ssim": round(sk_ssim, 1),
                      "note": "Y conversion not timed for skimage (done once beforehand)"}
    res["ratio_ours_over_skimage"] = {"psnr": round(ours_psnr / sk_psnr, 2), "ssim": round(ours_ssim / sk_ssim, 2)}
    # ours on the same cropped Y input (the Y images as single-channel [0, 1] tensors, no colour conversion)
    ta, tb = (torch.from_numpy(y[:, None] / 255.0) for y in (ya, yb))
    same_psnr, _ = rate(lambda: psnr(ta, tb, crop_border=0, y_channel=False), n, args.repeats)
    same_ssim, _ = rate(lambda: ssim(ta, tb, crop_border=0, y_channel=False), n, args.repeats)
    res["ours_same_y_input"] = {"psnr": round(same_psnr, 1), "ssim": round(same_ssim, 1)}
    res["ratio_ours_same_y_over_skimage"] = {"psnr": round(same_psnr / sk_psnr, 2),
                                             "ssim": round(same_ssim / sk_ssim, 2)}

    if args.sweep_passes:
        res["images_per_pass"] = sweep_passes(sr, hr, args.repeats)
    try:
        import pyiqa

        from blindsr_gym.metrics.pyiqa_adapter import seed_pyiqa_cache

        seed_pyiqa_cache()
        pn = pyiqa.create_metric("niqe", device="cpu")
        pp = pyiqa.create_metric("psnr", test_y_channel=True, crop_border=4, color_space="ycbcr", device="cpu")
        ps = pyiqa.create_metric("ssim", test_y_channel=True, crop_border=4, color_space="ycbcr", device="cpu")
        with torch.no_grad():
            # pyiqa's NIQE is faster one image at a time than batched (measured); give it its best
            pq_niqe_loop, _ = rate(lambda: [pn(sr[i:i + 1]) for i in range(n)], n, args.repeats)
            pq_niqe_batch, _ = rate(lambda: pn(sr), n, 1)
            pq_psnr, _ = rate(lambda: pp(sr, hr), n, args.repeats)
            pq_ssim, _ = rate(lambda: ps(sr, hr), n, args.repeats)
        best = max(pq_niqe_loop, pq_niqe_batch)
        res["pyiqa"] = {"version": pyiqa.__version__, "niqe_one_by_one": round(pq_niqe_loop, 1),
                        "niqe_batched": round(pq_niqe_batch, 1), "psnr": round(pq_psnr, 1),
                        "ssim": round(pq_ssim, 1)}
        res["ratio_ours_over_pyiqa"] = {"niqe": round(ours_niqe / best, 2), "psnr": round(ours_psnr / pq_psnr, 2),
                                        "ssim": round(ours_ssim / pq_ssim, 2)}
    except ImportError:
        res["pyiqa"] = "not installed (pip install -e '.[pyiqa]')"
    print(json.dumps(res, indent=1))


def sweep_passes(sr, hr, repeats) -> dict:
    """images/s of our metrics at 1, 2, 4, ... images per pass (the modules' pass sizes set to match)."""
    fid, nq = sys.modules["blindsr_gym.metrics.fidelity"], sys.modules["blindsr_gym.metrics.niqe"]
    saved = fid.PSNR_PASS_PIXELS, fid.SSIM_PASS_PIXELS, nq.CPU_PASS_PIXELS
    n, per_image = sr.shape[0], sr.shape[-2] * sr.shape[-1]
    out = {"psnr": {}, "ssim": {}, "niqe": {}}
    k = 1
    try:
        while k <= n:
            fid.PSNR_PASS_PIXELS = fid.SSIM_PASS_PIXELS = nq.CPU_PASS_PIXELS = k * per_image
            out["psnr"][k] = round(rate(lambda: psnr(sr, hr), n, repeats)[0], 1)
            out["ssim"][k] = round(rate(lambda: ssim(sr, hr), n, repeats)[0], 1)
            out["niqe"][k] = round(rate(lambda: niqe(sr), n, repeats)[0], 1)
            k *= 2
    finally:
        fid.PSNR_PASS_PIXELS, fid.SSIM_PASS_PIXELS, nq.CPU_PASS_PIXELS = saved
    out["used"] = {"psnr": saved[0] // per_image, "ssim": saved[1] // per_image, "niqe": saved[2] // per_image}
    return out


if __name__ == "__main__":
    main()
