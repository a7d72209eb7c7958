"""The evaluation harness: SR methods on folders of HR images, degraded with fixed kernels.

Every HR image is mod-cropped to the scale, degraded with each kernel of the setting (Eq. 1, no
noise, 8-bit LR, as DAN/IKC/the paper), restored by each method, and scored; fidelity metrics on
the MATLAB Y channel with ``crop_border = scale``. Records hold per-(method, dataset, kernel)
means; ``summary`` adds the mean over the kernels of a setting (the paper's Gaussian8 columns).

Methods (``--methods``, comma-separated; more register themselves with :func:`register_method`):

* ``bicubic``: MATLAB bicubic interpolation of the LR;
* ``gt``: the renderer (``--renderer``, default ``amnet_x4``) with the true kernel's code, the upper bound;
* ``amgan-gt``: AMGAN (``--gan-renderer``) with the true kernel's code (the paper's Table 3 reference);
* ``amnet-rl`` / ``amgan-rl``: the shipped actor (``--actor`` / ``--gan-actor``) choosing the code for
  AMNet / AMGAN;
* ``amnet-rl-ens``: ``amnet-rl`` with the test-time self-ensemble of a sigma-head actor
  (:class:`blindsr_gym.agents.SelfEnsemble`: the mean width over 8 flips and rotations of the LR);
* ``kenet``: the two-step pipeline KENet (``--kenet``) + AMNet, the estimated kernel encoded by the
  renderer's codec;
* ``dan``: DAN (``--dan``), which estimates its own code;
* ``fixed``: the renderer with the code of one isotropic kernel of width ``--fixed-sigma`` for every
  image, i.e. a policy that ignores its observation: the floor a kernel estimator has to beat (on Set5
  Gaussian8, sigma 2.2 beats KENet + AMNet; docs/results.md).

Methods that estimate a kernel (the RL actors through the codec, KENet, DAN through its codec)
also get ``kernel_psnr``: the PSNR of the estimated kernel against the true one (KENet's Table 3
figure). ``--figures DIR`` writes one visual comparison panel per (dataset, kernel): an image's
centre crop from every method next to the HR.

Long evaluations write ``--log FILE`` as they go, one JSON line per (method, dataset, image, kernel);
``--resume`` continues a log that stopped, recomputing nothing in it, so a run can be split over sessions
and still report the means an uninterrupted run would. The JSON's ``wall_s`` is this run's; ``method_s``
sums each method's seconds over all the log.

    blindsr-gym evaluate --data ../shared/data/test/Set5 --kernels gaussian8 --methods bicubic,gt \\
        --renderer amnet_x4 --metrics psnr,ssim --json out.json --markdown out.md
"""

from __future__ import annotations

from ..utils import weights_digest
from .cli import add_arguments, run_cli
from .cost import cost_table
from .harness import evaluate, load_datasets, parse_kernels
from .log import PerImageLog
from .methods import METHODS, Method, make_method, register_method
from .report import FigurePanels, summarize, to_markdown

__all__ = ["METHODS", "Method", "register_method", "make_method", "parse_kernels", "load_datasets", "evaluate",
           "PerImageLog", "summarize", "to_markdown", "FigurePanels", "cost_table", "run_cli", "add_arguments",
           "weights_digest"]
