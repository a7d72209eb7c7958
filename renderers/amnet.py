"""AMNet: a non-blind SR network conditioned on a kernel code through adaptive modulation (Hui et al., 2021).

The paper gives equations and parameter counts, not code. The layout here is inferred from them:

* **AMLayer (Eq. 7)**: ``y = gamma(k, sigma(x)) * (x - mu(x)) / sigma(x) + beta(k, mu(x))`` with
  ``gamma = FC1(concat(FC(k), sigma(x)))`` and ``beta = FC2(concat(FC(k), mu(x)))``; ``mu`` and
  ``sigma`` are per-channel spatial statistics (``sigma = sqrt(var + eps)``). ``FC(k)`` is a
  two-layer MLP ``15 -> 64 -> 64`` (ReLU between); ``FC1`` and ``FC2`` are ``128 -> 64``. That is
  21,696 parameters per AMLayer.
* **AMRB**: ``x + AMLayer(conv3x3(relu(conv3x3(x))))``, one AMLayer per block: 73,856 + 21,696 =
  95,552 parameters. The paper's counts give ``(3,121K - 1,599K) / 16 = 95.1K`` per block, which a
  block with two AMLayers (117K) or with single-layer FC(k) (91.4K, 4.3% short in total) misses.
* **Outside the blocks** (SRResNet topology): head ``conv3x3(3 -> 64)``, a ``conv3x3(64 -> 64)`` after
  the blocks with the long skip, and a light upsampler ``conv3x3(64 -> 3 s^2)`` + PixelShuffle(s):
  66,416 parameters at x4 (the paper's counts leave about 77K).
* Totals: AMNet (16 AMRBs) 1,595,248 vs the paper's 1,599K (-0.2%); AMNet_L (32 AMRBs) 3,124,080 vs
  3,121K (+0.1%). ``tests/test_renderers.py`` pins these.

Two choices the paper does not state, made for training on small compute and documented as such:

* The code is normalised inside the network onto ``[-1, 1]`` with the codec's code box (PCA codes of
  21x21 kernels are small numbers); the box is stored as buffers, so the checkpoint carries it.
* ``image_skip=True`` adds a bicubic upsampling of the LR to the output (the network learns the
  residual). It has no parameters. FC1/FC2 start as the identity on ``sigma``/``mu`` (plus a small
  random dependence on ``k``), so an untrained AMLayer passes its input through.

The AdaIN ablation (Eq. 4, ``modulation="adain"``) uses ``gamma = FC1(FC(k))``, ``beta = FC2(FC(k))``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from blindsr_gym.errors import InputError
from blindsr_gym.kernels import KernelCodec

MODULATIONS = ("am", "adain")


def register_code_box(module: nn.Module, codec: KernelCodec) -> None:
    """Buffers ``code_center`` / ``code_halfwidth`` of the codec's code box (saved with the weights)."""
    lo = torch.as_tensor(codec.code_low, dtype=torch.float32)
    hi = torch.as_tensor(codec.code_high, dtype=torch.float32)
    module.register_buffer("code_center", (lo + hi) / 2)
    module.register_buffer("code_halfwidth", (hi - lo) / 2)


def normalized_code(module: nn.Module, code: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The code mapped onto [-1, 1] by the box of :func:`register_code_box`, clamped to it.

    The clamp matters for codes that do not come from actions: the trailing PCA components of a
    smooth kernel family span boxes as narrow as 1e-6, so the code of an *estimated* kernel (KENet's,
    say) carries noise there that the affine map would blow up a thousandfold. The network never saw
    anything outside the box in training; clamping leaves every in-box code unchanged.
    """
    return ((code.to(dtype) - module.code_center) / module.code_halfwidth).clamp(-1, 1)


def _channel_stats(x: torch.Tensor, eps: float, one_pass: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel spatial mean and std ``sqrt(var + eps)``, each ``[N, C]``, returned in float32.

    Computed over a view in which the reduced axis is contiguous in memory: ``[N, H*W, C]`` for
    channels-last tensors, ``[N, C, H*W]`` otherwise.

    * ``one_pass`` (the default on a GPU): ``torch.var_mean`` on ``x`` in its own dtype, one read of ``x``
      (Welford, accumulated in float32; the results are rounded to bf16 under bf16 autocast, as the FC
      layers and the multiply-add round them anyway). On a GPU the two passes' full-size float32
      temporaries were a large share of a render (docs/gpu/nvidia-h200/).
    * otherwise two passes over a float32 copy (the mean, then the mean squared deviation): on the CPU
      ``torch.var_mean`` over (H, W) of a channels-last tensor is far slower
      (docs/experiments/2026-11-27_data_path_cpu.md), and the statistics stay exact under bf16 autocast.

    A bf16 render with one-pass statistics is as close to the float32 render as with two passes
    (``tests/test_renderers.py``).
    """
    n, c = x.shape[:2]
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        y, dim = x.permute(0, 2, 3, 1).reshape(n, -1, c), 1
    else:
        y, dim = x.reshape(n, c, -1), 2
    if x.is_cuda if one_pass is None else one_pass:
        var, mu = (t.float() for t in torch.var_mean(y, dim, correction=0))
    else:
        y = y.float()
        mu = y.mean(dim)
        var = (y - mu.unsqueeze(dim)).square().mean(dim)
    return mu, torch.sqrt(var + eps)


@functools.lru_cache(maxsize=32)
def _upsample_matrix(n: int, scale: int, device: torch.device) -> torch.Tensor:
    """``[scale * n, n]`` float32 weights of ``F.interpolate(mode="bicubic", align_corners=False)`` along one
    axis: Keys' cubic with A = -0.75 at source ``(i + 0.5) / scale - 0.5``, taps clamped to the edge."""
    a = -0.75

    def w(t):  # the convolution kernel at distance t
        t = abs(t)
        return ((a + 2) * t - (a + 3)) * t * t + 1 if t <= 1 else (((t - 5) * t + 8) * t - 4) * a if t < 2 else 0.0

    m = torch.zeros(scale * n, n, dtype=torch.float64)
    for i in range(scale * n):
        src = (i + 0.5) / scale - 0.5
        j0 = math.floor(src)
        t = src - j0
        for k in range(-1, 3):
            m[i, min(max(j0 + k, 0), n - 1)] += w(k - t)
    return m.float().to(device)


def bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """``F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)`` as two matrix products
    (much faster on the CPU, and equal to float32 rounding). Computed in x's dtype even under autocast."""
    h, w = x.shape[-2:]
    mh, mw = _upsample_matrix(h, scale, x.device), _upsample_matrix(w, scale, x.device)
    with torch.autocast(x.device.type, enabled=False):
        return torch.matmul(torch.matmul(mh.to(x.dtype), x), mw.to(x.dtype).T)


class AMLayer(nn.Module):
    """Adaptive modulation (Eq. 7), or AdaIN conditioned on the code alone (Eq. 4)."""

    def __init__(self, channels: int = 64, code_len: int = 15, hidden: int = 64, eps: float = 1e-5,
                 modulation: str = "am"):
        super().__init__()
        if modulation not in MODULATIONS:
            raise InputError(f"modulation must be one of {MODULATIONS}, got {modulation!r}")
        self.modulation, self.eps, self.channels = modulation, eps, channels
        self.fc_k = nn.Sequential(nn.Linear(code_len, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, hidden))
        stat = channels if modulation == "am" else 0
        self.fc1 = nn.Linear(hidden + stat, channels)
        self.fc2 = nn.Linear(hidden + stat, channels)
        self._init_identity()

    @torch.no_grad()
    def _init_identity(self):
        for fc in (self.fc1, self.fc2):
            fc.weight.mul_(0.1)
            fc.bias.zero_()
            if self.modulation == "am":  # gamma ~ sigma(x), beta ~ mu(x): the layer starts near identity
                fc.weight[:, -self.channels:] = torch.eye(self.channels)
        if self.modulation == "adain":
            self.fc1.bias.fill_(1.0)

    def forward(self, x: torch.Tensor, code: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        """``shift`` ``[C]``: the layer's input is ``x + shift`` (a convolution's bias left unapplied). It
        moves the mean the FC layers see and cancels from the output, so it costs no pass over ``x``."""
        mu, sigma = _channel_stats(x, self.eps)
        fk = self.fc_k(code)
        if self.modulation == "am":
            gamma = self.fc1(torch.cat([fk, sigma], dim=1))
            mean_in = mu if shift is None else mu + shift.float()
            beta = self.fc2(torch.cat([fk, mean_in], dim=1))
        else:
            gamma, beta = self.fc1(fk), self.fc2(fk)
        return _modulate(x, gamma.float(), beta.float(), mu, sigma)

    def modulate(self, x: torch.Tensor, terms: torch.Tensor) -> torch.Tensor:
        """The same output as ``forward``, given ``terms`` ``[N, 2C]`` float32, the code's (and the shift's)
        share of ``(gamma, beta)`` from :func:`code_terms`: only the statistics' share is computed here, in
        float32 whatever the autocast state, as two small matrix products."""
        mu, sigma = _channel_stats(x, self.eps)
        c = self.channels
        gamma, beta = terms[:, :c], terms[:, c:]
        if self.modulation == "am":
            with torch.autocast(x.device.type, enabled=False):
                gamma = torch.addmm(gamma, sigma, self.fc1.weight[:, -c:].T)
                beta = torch.addmm(beta, mu, self.fc2.weight[:, -c:].T)
        return _modulate(x, gamma, beta, mu, sigma)


def _modulate(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, mu: torch.Tensor,
              sigma: torch.Tensor) -> torch.Tensor:
    """``gamma * (x - mu) / sigma + beta`` as one multiply-add per element, ``x * a + b`` (float32 ``[N, C]``
    coefficients, rounded to x's dtype)."""
    a = gamma / sigma
    b = torch.addcmul(beta, a, mu, value=-1)
    return torch.addcmul(b.to(x.dtype)[:, :, None, None], x, a.to(x.dtype)[:, :, None, None])


def code_terms(layers: list[AMLayer], code: torch.Tensor, shifts: list[torch.Tensor] | None = None) -> torch.Tensor:
    """``[len(layers), N, 2C]`` float32: for each AMLayer, the part of its ``(gamma, beta)`` that does not
    depend on its input's statistics, ``FC1/FC2`` applied to ``FC(code)`` (plus, for ``"am"``, ``FC2``'s
    weights on the mean applied to the layer's ``shift``), for all layers in a few batched matrix products.

    Equal to what each layer's ``forward`` computes (float rounding aside), with about 20 fewer small
    operations per layer: a render is a few large convolutions and many such small operations, each of which
    costs a kernel launch on a GPU. Float32 whatever the autocast state; differentiable."""
    first = layers[0]
    if any(la.modulation != first.modulation or la.channels != first.channels for la in layers):
        raise InputError("code_terms needs AMLayers of one modulation and width")
    n_layers, c, hidden = len(layers), first.channels, first.fc_k[2].out_features

    def stack(get):
        return torch.stack([get(la) for la in layers])

    with torch.autocast(code.device.type, enabled=False):
        k = code.float().expand(n_layers, *code.shape)
        h = torch.baddbmm(stack(lambda la: la.fc_k[0].bias).unsqueeze(1), k,
                          stack(lambda la: la.fc_k[0].weight).transpose(1, 2)).relu_()
        fk = torch.baddbmm(stack(lambda la: la.fc_k[2].bias).unsqueeze(1), h,
                           stack(lambda la: la.fc_k[2].weight).transpose(1, 2))  # [B, N, hidden]
        w1, w2 = stack(lambda la: la.fc1.weight), stack(lambda la: la.fc2.weight)  # [B, C, hidden (+ C)]
        b1, b2 = stack(lambda la: la.fc1.bias), stack(lambda la: la.fc2.bias)
        if shifts is not None and first.modulation == "am":  # beta = FC2([fk, mu + shift])
            s = torch.stack([t.float() for t in shifts]).unsqueeze(-1)
            b2 = torch.baddbmm(b2.unsqueeze(-1), w2[:, :, -c:], s).squeeze(-1)
        w = torch.cat([w1[:, :, :hidden], w2[:, :, :hidden]], dim=1)  # [B, 2C, hidden]
        return torch.baddbmm(torch.cat([b1, b2], dim=1).unsqueeze(1), fk, w.transpose(1, 2))


def conv_relu(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``relu(conv(x))``: on a GPU outside autograd one cuDNN call with the bias and the ReLU fused
    (``torch.cudnn_convolution_relu``, in autocast's dtype when autocast is on), which saves the two
    elementwise passes PyTorch otherwise makes after cuDNN's convolution; elsewhere the plain layers."""
    if not x.is_cuda or torch.is_grad_enabled() or not hasattr(torch, "cudnn_convolution_relu"):
        return F.relu(conv(x), inplace=True)
    dt = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else x.dtype
    return torch.cudnn_convolution_relu(x.to(dt), conv.weight.to(dt), conv.bias.to(dt), conv.stride, conv.padding,
                                        conv.dilation, conv.groups)


class AMRB(nn.Module):
    """Adaptive-modulation residual block: ``x + AM(conv(relu(conv(x))), k)``."""

    def __init__(self, channels: int = 64, code_len: int = 15, modulation: str = "am"):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.am = AMLayer(channels, code_len, channels, modulation=modulation)

    def forward(self, x: torch.Tensor, code: torch.Tensor, terms: torch.Tensor | None = None,
                fused: bool = False) -> torch.Tensor:
        """``terms``: this block's slice of :func:`code_terms` (with ``shifts=[conv2.bias]``), computed for all
        blocks at once by AMNet; without it the AMLayer computes its FC layers itself. ``fused``: conv1, its
        bias and the ReLU as one cuDNN call where that applies (:func:`conv_relu`)."""
        # conv2's bias goes to the AMLayer as a shift, which cancels it from the output: one elementwise pass
        # over the features fewer per block (a GPU render is bound by such passes: docs/gpu/nvidia-h200/)
        r = conv_relu(x, self.conv1) if fused else F.relu(self.conv1(x), inplace=True)
        h = F.conv2d(r, self.conv2.weight, None, padding=1)
        if terms is None:
            return x + self.am(h, code, shift=self.conv2.bias)
        return x + self.am.modulate(h, terms)


def _run_block(block: AMRB, x: torch.Tensor, code: torch.Tensor, terms: torch.Tensor | None,
               fused: bool) -> torch.Tensor:
    return block(x, code, terms, fused)


_COMPILED = contextvars.ContextVar("amnet_compiled_blocks", default=False)


@functools.cache
def _compiled_run_block():
    """:func:`_run_block` through ``torch.compile``, made once per process. The blocks are one module class
    with parameters of one shape, and PyTorch 2.5+ passes an inlined module's parameters to the compiled
    graph as inputs, so one compilation serves every block of every AMNet (a new one only for a new input
    shape, dtype, device or autograd mode)."""
    return torch.compile(_run_block)


@contextlib.contextmanager
def compiled_blocks(enabled: bool = True):
    """Within this context, AMNet's residual blocks run compiled by ``torch.compile`` ("regional
    compilation"): TorchInductor fuses each block's elementwise work (the bias and ReLU after conv1, the
    AMLayer's statistics and multiply-add, the residual add; in training their backward too) into a few
    kernels around the convolutions. The rest of the forward (head, upsampler, the batched conditioning)
    stays eager.

    Compiling one block instead of the whole network keeps the first call's compilation to one block's:
    the whole network did not finish compiling in 140 s on an H200 (docs/gpu/nvidia-h200/README.md). The
    outputs equal the eager ones to float rounding (tested). Renderers other than AMNet ignore it. A
    context variable, not a model attribute, so that enabling it for one env or trainer leaves a renderer
    module shared with other code as it was."""
    token = _COMPILED.set(bool(enabled))
    try:
        yield
    finally:
        _COMPILED.reset(token)


class AMNet(nn.Module):
    """SRResNet topology with AMRBs. ``forward(lr, code)``: LR float NCHW in [0, 1], code ``[N, L]``.

    Returns SR ``[N, 3, s*H, s*W]``; clamped to [0, 1] in eval mode (unclamped while training so the
    loss sees the raw output).
    """

    arch = "amnet"

    def __init__(self, scale: int = 4, num_blocks: int = 16, channels: int = 64, code_len: int = 15,
                 modulation: str = "am", image_skip: bool = True, codec: KernelCodec | None = None):
        super().__init__()
        if scale not in (2, 3, 4):
            raise InputError(f"scale must be 2, 3 or 4, got {scale!r}")
        if not isinstance(num_blocks, int) or num_blocks < 1:
            raise InputError(f"num_blocks must be a positive integer, got {num_blocks!r}")
        codec = codec if codec is not None else KernelCodec.default()
        if codec.length != code_len:
            raise InputError(f"codec has length {codec.length} but code_len={code_len}")
        self.codec, self.scale, self.code_len = codec, scale, code_len
        self.config = dict(scale=scale, num_blocks=num_blocks, channels=channels, code_len=code_len,
                           modulation=modulation, image_skip=image_skip)
        self.image_skip = image_skip
        # True: the blocks' code-dependent FC layers run batched before the body (code_terms); False: each
        # AMLayer runs its own (the layer as written; the same output to float rounding)
        self.batched_conditions = True
        # True: on a GPU outside autograd, each block's conv1 + bias + ReLU run as one cuDNN call (conv_relu);
        # off until a GPU run shows it faster (benchmarks/host_overhead.py measures both)
        self.fused_conv_relu = False
        register_code_box(self, codec)
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = nn.ModuleList(AMRB(channels, code_len, modulation) for _ in range(num_blocks))
        self.body_tail = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsample = nn.Sequential(nn.Conv2d(channels, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))

    def forward(self, lr: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise InputError(f"lr must be float [N, 3, H, W], got {tuple(lr.shape)}")
        if code.dim() != 2 or code.shape != (lr.shape[0], self.code_len):
            raise InputError(f"code must be [N={lr.shape[0]}, {self.code_len}], got {tuple(code.shape)}")
        k = normalized_code(self, code, lr.dtype)
        terms = None
        if self.batched_conditions:  # every block's code-dependent FC work in one batched pass
            terms = code_terms([b.am for b in self.blocks], k, [b.conv2.bias for b in self.blocks])
        feat = self.head(lr)
        x = feat
        run = _compiled_run_block() if _COMPILED.get() else _run_block  # see compiled_blocks()
        for i, block in enumerate(self.blocks):
            x = run(block, x, k, None if terms is None else terms[i], self.fused_conv_relu)
        sr = self.upsample(self.body_tail(x) + feat)
        if self.image_skip:
            sr = sr + bicubic_upsample(lr, self.scale)
        return sr if self.training else sr.clamp(0, 1)


def amnet(**kwargs) -> AMNet:
    """AMNet: 16 AMRBs (1,595K parameters at x4; paper 1,599K)."""
    kwargs.setdefault("num_blocks", 16)
    return AMNet(**kwargs)


def amnet_l(**kwargs) -> AMNet:
    """AMNet_L: 32 AMRBs (3,124K parameters at x4; paper 3,121K)."""
    kwargs.setdefault("num_blocks", 32)
    return AMNet(**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
