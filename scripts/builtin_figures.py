"""The figures the shipped-model tests and the README state on the built-in images, recomputed.

    python scripts/builtin_figures.py [--out figures.json]

Prints JSON: for each shipped model the quantities its test asserts on centre crops of
``blindsr_gym.data.builtin()`` (widths read, gains over bicubic, Eq. 8 rewards, PSNR drops), so that a
threshold can be re-derived from what the code measures today rather than loosened. Run it again
whenever the data path changes (the colour-order fix of 2026-11-27 moved every one of them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

#: the NIQE actors, grouped by the AMGAN each was trained against (their tests score them with it)
NIQE_ACTORS = {"amgan_x4": ("actor_niqe_x4", "actor_niqe2_x4", "actor_niqe3_x4"), "amgan2_x4": ("actor_niqe4_x4",)}


def _r(x, n=3):
    return [round(float(v), n) for v in np.asarray(x).reshape(-1)]


@torch.no_grad()
def main() -> int:
    from blindsr_gym.agents import load_actor
    from blindsr_gym.agents.kenet import load_kenet
    from blindsr_gym.data import ImageList, builtin
    from blindsr_gym.degradation import degrade, imresize
    from blindsr_gym.kernels import isotropic_gaussian, isotropic_sigma, kernel_psnr
    from blindsr_gym.metrics import get_metric, psnr
    from blindsr_gym.renderers import load_renderer
    from blindsr_gym.utils import centre_crop, to_tensor

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--swap-channels", action="store_true",
                   help="R and B swapped: the data the figures were measured on before the colour-order fix")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    def images(mod: int = 1):
        s_ = builtin(mod=mod)
        if args.swap_channels:
            s_ = ImageList([im[..., ::-1] for im in s_.images], s_.names, mod=mod)
        return s_

    src = images()
    out: dict = {"command": "python scripts/builtin_figures.py " + " ".join(sys.argv[1:]),
                 "channel_means": {n: _r(src[i].reshape(-1, 3).mean(0), 1) for i, n in enumerate(src.names)}}

    # each robust renderer against its init (amnet_x4 / amnet_robust_x4, amnet2_x4 / amnet_robust2_x4): PSNR-Y
    # drop from rendering with a width 30% over the truth (192x192 crops)
    src4 = images(mod=4)
    drops = {}
    for name in ("amnet_x4", "amnet_robust_x4", "amnet2_x4", "amnet_robust2_x4"):
        g = load_renderer(name)
        d = []
        for i in range(len(src4)):
            hr = to_tensor(src4[i])[..., :192, :192]
            for s in (1.8, 2.6):
                lr = degrade(hr, isotropic_gaussian(s)[None], 4)
                p_ = [float(psnr(g(lr, g.codec.encode(isotropic_gaussian(s * m)[None])).clamp(0, 1), hr))
                      for m in (1.0, 1.3)]
                d.append(p_[0] - p_[1])
        drops[name] = {"per_image_sigma1.8": _r(d[0::2]), "per_image_sigma2.6": _r(d[1::2]),
                       "mean": round(float(np.mean(d)), 3)}
    out["over_estimate_drop_dB"] = drops

    # kenet_x4: kernel PSNR and squared error against the best single fixed kernel
    model = load_kenet("kenet_x4")
    grid = [torch.as_tensor(isotropic_gaussian(0.2 + 0.1 * i)).float() for i in range(39)]
    kp, err, fixed = [], [], torch.zeros(len(grid))
    for i in range(len(src)):
        hr = to_tensor(src[i])
        for s in (1.2, 2.4, 3.6):
            k = torch.as_tensor(isotropic_gaussian(s)).float()[None]
            k_hat = model(degrade(hr, k[0], 4))
            kp.append(float(kernel_psnr(k_hat, k)[0]))
            err.append(float(((k_hat - k) ** 2).sum()))
            fixed += torch.stack([((g_ - k[0]) ** 2).sum() for g_ in grid])
    out["kenet_x4"] = {"kernel_psnr_mean": round(float(np.mean(kp)), 2), "kernel_psnr": _r(kp, 2),
                       "fixed_err_over_err": round(float(fixed.min()) / float(np.sum(err)), 2)}

    # actor_psnr_x4: widths read and gains over bicubic on 256x256 centre crops of three images
    renderer = load_renderer("amnet_x4")
    actor = load_actor("actor_psnr_x4", codec=renderer.codec)
    widths, gains, gains_gt = [], [], []
    for i in range(3):
        hr = centre_crop(to_tensor(src[i]), 256)
        for sigma in (1.8, 2.4, 3.0):
            k = isotropic_gaussian(sigma)
            lr = degrade(hr, k, 4)
            bic = float(psnr(imresize(lr, 4.0).clamp(0, 1), hr, crop_border=4)[0])
            sr = renderer(lr, renderer.codec.action_to_code(actor(lr)))
            widths.append(float(actor.sigma(lr)[0]))
            gains.append(float(psnr(sr, hr, crop_border=4)[0]) - bic)
            gains_gt.append(float(psnr(renderer(lr, renderer.codec.encode(k)), hr, crop_border=4)[0]) - bic)
    w = np.array(widths).reshape(3, 3)
    out["actor_psnr_x4"] = {"widths": {src.names[i]: _r(w[i], 2) for i in range(3)},
                            "mean_abs_rel_error": round(float(np.abs(w / [1.8, 2.4, 3.0] - 1).mean()), 4),
                            "gain_min": round(min(gains), 2), "gain_mean": round(float(np.mean(gains)), 2),
                            "true_kernel_gain_mean": round(float(np.mean(gains_gt)), 2)}

    # the NIQE actors: Eq. 8 NIQE rewards on 384x384 centre crops with the AMGAN each was trained against,
    # against actor_psnr_x4 with the same AMGAN (each episode degraded and rendered with its true kernel once,
    # for all the actors of that renderer)
    niqe = get_metric("niqe")
    for gan_name, names in NIQE_ACTORS.items():
        gan = load_renderer(gan_name)
        actors = {n: load_actor(n, codec=gan.codec) for n in (*names, "actor_psnr_x4")}
        rew, ratio = {n: [] for n in actors}, {n: [] for n in actors}
        for i in range(3):
            hr = centre_crop(to_tensor(src[i]), 384)
            for sigma in (1.8, 2.4, 3.0):
                k = isotropic_gaussian(sigma)
                lr = degrade(hr, k, 4)
                base = float(niqe(gan(lr, gan.codec.encode(k)))[0])
                for n, a in actors.items():
                    rew[n].append(base - float(niqe(gan(lr, gan.codec.action_to_code(a(lr))))[0]))
                    ratio[n].append(float(a.sigma(lr)[0]) / sigma)
        rew_p, ratio_p = rew["actor_psnr_x4"], ratio["actor_psnr_x4"]
        for name in names:
            r, w = rew[name], ratio[name]
            out[name] = {"renderer": gan_name, "rewards": _r(r), "reward_mean": round(float(np.mean(r)), 3),
                         "positive": int(np.sum(np.array(r) > 0)),
                         "psnr_actor_reward_mean": round(float(np.mean(rew_p)), 3),
                         "width_ratio": _r(w), "width_ratio_mean": round(float(np.mean(w)), 3),
                         "psnr_actor_width_ratio_mean": round(float(np.mean(ratio_p)), 3),
                         "width_ratio_sum_gap": round(float(np.sum(w) - np.sum(ratio_p)), 3)}

    # dan_x4: gains over bicubic on 192x192 centre crops and the width of its estimated code
    dan = load_renderer("dan_x4")
    gains, codes = [], []
    for i in range(3):
        hr = centre_crop(to_tensor(src[i]), 192)
        for sigma in (1.8, 2.6, 3.2):
            lr = degrade(hr, isotropic_gaussian(sigma), 4)
            srs, est = dan(lr)
            gains.append(float(psnr(srs[-1].clamp(0, 1), hr)[0] - psnr(imresize(lr, 4).clamp(0, 1), hr)[0]))
            codes.append(est[-1][0])
    dw = isotropic_sigma(dan.codec.decode(torch.stack(codes).float())).reshape(3, 3)
    out["dan_x4"] = {"gain_min": round(min(gains), 2), "gain_max": round(max(gains), 2),
                     "gain_mean": round(float(np.mean(gains)), 2),
                     "widths": {src.names[i]: _r(dw[i], 2) for i in range(3)}}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        from blindsr_gym.fileio import write_text

        write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
