"""Image-quality metrics: a registry with metadata, and native NIQE, PSNR and SSIM.

``get_metric("niqe")`` etc. return a :class:`Metric`; ``get_metric("pyiqa:<name>")`` wraps pyiqa.
"""

from .fidelity import psnr, ssim
from .niqe import niqe
from .registry import Metric, at_scale, get_metric, list_metrics, register_metric

__all__ = ["Metric", "at_scale", "get_metric", "list_metrics", "register_metric", "niqe", "psnr", "ssim"]

register_metric("niqe", niqe, lower_better=True, needs_reference=False,
                description="NIQE (MATLAB release, rgb2gray), no-reference; lower is better")
register_metric("psnr", psnr, lower_better=False, needs_reference=True,
                description="PSNR in dB on MATLAB Y, border = 4 cropped")
register_metric("ssim", ssim, lower_better=False, needs_reference=True,
                description="SSIM (Wang et al., 11x11 Gaussian, sigma 1.5) on MATLAB Y, border = 4 cropped")
