"""Fused per-step math of the DiffC and UQDM codecs (Triton, with PyTorch references).

One reverse step t → s turns the network output into everything the channel
simulation needs, element by element. Each kernel reads its step's scalars from a
float32 coefficient vector (so the kernel and the reference see the same float32
values), performs the same IEEE float32 operations in the same order as its
reference (``/`` is ``div_rn``, launched with ``enable_fp_fusion=False`` so no FMA is
formed) and therefore matches it bit for bit.

Coefficients (float32 vectors, built by :func:`chansim.codecs.diffc_channel.coefficients`
/ :func:`chansim.codecs.uqdm_step.coefficients` from float64 step coefficients):

- DiffC: ``[α_t, σ_t, a, b, β]`` with μ_Q = a z_t + b x, β the posterior std.
- UQDM: ``[α_t, σ_t, a, b, Δ, c]`` with Δ = √12 β and c = σ_{t|s}·√3/π the logistic
  scale per unit of the network's scale factor f.

Kernels:

- ``diffc_encode``: x̂ = (z − σ_t ε̂)/α_t (optionally clipped to [−1, 1]), μ_p = a z + b x̂,
  μ_q = a z + b x, m = (μ_q − μ_p)/β, kl = ½ m² (nats per coordinate).
- ``diffc_decode``: x̂, μ_p and z_s = μ_p + β ξ for the received standardised sample ξ.
- ``uqdm_encode``: x̂, μ_p, k = rint((μ_q − μ_p)/Δ + u) (int32; round half to even, the rule of
  :mod:`chansim.dq`, docs/format.md §3), the scale index
  #{b_j ≤ f c/Δ} into the entropy-table grid (int32), z_s = μ_p + Δ(k − u).
- ``uqdm_decode``: μ_p, the scale index and z_s from a received k.

The CPU path never needs Triton: with ``backend="auto"`` the Triton kernel runs
only for CUDA tensors when Triton is installed; otherwise the reference runs.
``backend="triton"`` forces the kernel (on CPU that requires ``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import torch

try:  # Triton is optional: the references below are the CPU implementation.
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised on installs without triton
    triton = None
    tl = None

HAVE_TRITON = triton is not None
BLOCK = 1024

DIFFC_COEFFICIENTS = ("alpha_t", "sigma_t", "a", "b", "beta")
UQDM_COEFFICIENTS = ("alpha_t", "sigma_t", "a", "b", "delta", "scale_per_factor")


# --------------------------------------------------------------------------------------------
# PyTorch references (the CPU implementation). One float32 op per line, in kernel order.
# --------------------------------------------------------------------------------------------

def _coef(coefs: torch.Tensor, n: int):
    if coefs.dtype != torch.float32 or coefs.numel() != n:
        raise ValueError(f"expected {n} float32 coefficients, got {coefs.numel()} of {coefs.dtype}")
    return coefs.unbind(0)


def _x_hat(z, eps, alpha_t, sigma_t, clip: bool):
    x_hat = (z - sigma_t * eps) / alpha_t
    if clip:
        x_hat = torch.clamp(x_hat, -1.0, 1.0)
    return x_hat


def diffc_encode_ref(z, eps, x, coefs, clip: bool = False):
    """(x̂, μ_p, μ_q, m, kl) — see the module docstring."""
    alpha_t, sigma_t, a, b, beta = _coef(coefs, 5)
    x_hat = _x_hat(z, eps, alpha_t, sigma_t, clip)
    mu_p = a * z + b * x_hat
    mu_q = a * z + b * x
    m = (mu_q - mu_p) / beta
    kl = 0.5 * (m * m)
    return x_hat, mu_p, mu_q, m, kl


def diffc_decode_ref(z, eps, xi, coefs, clip: bool = False):
    """(x̂, μ_p, z_s = μ_p + β ξ)."""
    alpha_t, sigma_t, a, b, beta = _coef(coefs, 5)
    x_hat = _x_hat(z, eps, alpha_t, sigma_t, clip)
    mu_p = a * z + b * x_hat
    return x_hat, mu_p, mu_p + beta * xi


def scale_index_ref(s_hat: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """#{j : bounds[j] ≤ ŝ} as int32 (bounds ascending); NaN → 0."""
    idx = torch.searchsorted(bounds.to(s_hat.dtype), s_hat.contiguous(), right=True, out_int32=True)
    return torch.where(torch.isnan(s_hat), torch.zeros_like(idx), idx)


def rint_ref(y: torch.Tensor) -> torch.Tensor:
    """Round half to even (float32 in, float32 out): exact, as :func:`_rint_tl`."""
    return torch.round(y)


def uqdm_encode_ref(z, eps, f, x, u, coefs, bounds, clip: bool = True):
    """(x̂, μ_p, k, scale index, z_s) — see the module docstring."""
    alpha_t, sigma_t, a, b, delta, c = _coef(coefs, 6)
    x_hat = _x_hat(z, eps, alpha_t, sigma_t, clip)
    mu_p = a * z + b * x_hat
    mu_q = a * z + b * x
    kf = rint_ref((mu_q - mu_p) / delta + u)
    idx = scale_index_ref((f * c) / delta, bounds)
    z_s = mu_p + delta * (kf - u)
    return x_hat, mu_p, kf.to(torch.int32), idx, z_s


def uqdm_decode_ref(z, eps, f, k, u, coefs, bounds, clip: bool = True):
    """(x̂, μ_p, scale index, z_s = μ_p + Δ(k − u))."""
    alpha_t, sigma_t, a, b, delta, c = _coef(coefs, 6)
    x_hat = _x_hat(z, eps, alpha_t, sigma_t, clip)
    mu_p = a * z + b * x_hat
    idx = scale_index_ref((f * c) / delta, bounds)
    z_s = mu_p + delta * (k.to(torch.float32) - u)
    return x_hat, mu_p, idx, z_s


# --------------------------------------------------------------------------------------------
# Triton kernels
# --------------------------------------------------------------------------------------------

if HAVE_TRITON:

    @triton.jit
    def _x_hat_tl(z, e, alpha_t, sigma_t, CLIP: tl.constexpr):
        x_hat = tl.div_rn(z - sigma_t * e, alpha_t)
        if CLIP:
            # NaN propagates, as in torch.clamp.
            x_hat = tl.minimum(tl.maximum(x_hat, -1.0, propagate_nan=tl.PropagateNan.ALL), 1.0,
                               propagate_nan=tl.PropagateNan.ALL)
        return x_hat

    @triton.jit
    def _rint_tl(y):
        # Round half to even without libdevice: for 0 ≤ a < 2^23, a + 2^23 lies where the float32
        # spacing is 1, so the addition itself rounds a to the nearest integer, ties to even
        # (2^23 is even); the subtraction is exact. |y| ≥ 2^23 is already an integer. Needs
        # enable_fp_fusion=False and no reassociation, both of which hold for these launches.
        a = tl.abs(y)
        r = (a + 8388608.0) - 8388608.0
        r = tl.where(a < 8388608.0, r, a)
        return tl.where(y < 0.0, -r, r)

    @triton.jit
    def _scale_index_tl(s_hat, bounds_ptr, n_bounds, BLOCK_: tl.constexpr):
        idx = tl.zeros([BLOCK_], dtype=tl.int32)
        for j in range(0, n_bounds):
            bj = tl.load(bounds_ptr + j)
            idx += (s_hat >= bj).to(tl.int32)
        return idx

    @triton.jit
    def _diffc_encode_kernel(z_ptr, e_ptr, x_ptr, c_ptr, xh_ptr, mp_ptr, mq_ptr, m_ptr, kl_ptr, n,
                             CLIP: tl.constexpr, BLOCK_: tl.constexpr):
        offs = tl.program_id(0) * BLOCK_ + tl.arange(0, BLOCK_)
        mask = offs < n
        alpha_t = tl.load(c_ptr + 0)
        sigma_t = tl.load(c_ptr + 1)
        a = tl.load(c_ptr + 2)
        b = tl.load(c_ptr + 3)
        beta = tl.load(c_ptr + 4)
        z = tl.load(z_ptr + offs, mask=mask, other=0.0)
        e = tl.load(e_ptr + offs, mask=mask, other=0.0)
        x = tl.load(x_ptr + offs, mask=mask, other=0.0)
        x_hat = _x_hat_tl(z, e, alpha_t, sigma_t, CLIP)
        mu_p = a * z + b * x_hat
        mu_q = a * z + b * x
        m = tl.div_rn(mu_q - mu_p, beta)
        kl = 0.5 * (m * m)
        tl.store(xh_ptr + offs, x_hat, mask=mask)
        tl.store(mp_ptr + offs, mu_p, mask=mask)
        tl.store(mq_ptr + offs, mu_q, mask=mask)
        tl.store(m_ptr + offs, m, mask=mask)
        tl.store(kl_ptr + offs, kl, mask=mask)

    @triton.jit
    def _diffc_decode_kernel(z_ptr, e_ptr, xi_ptr, c_ptr, xh_ptr, mp_ptr, zs_ptr, n,
                             CLIP: tl.constexpr, BLOCK_: tl.constexpr):
        offs = tl.program_id(0) * BLOCK_ + tl.arange(0, BLOCK_)
        mask = offs < n
        alpha_t = tl.load(c_ptr + 0)
        sigma_t = tl.load(c_ptr + 1)
        a = tl.load(c_ptr + 2)
        b = tl.load(c_ptr + 3)
        beta = tl.load(c_ptr + 4)
        z = tl.load(z_ptr + offs, mask=mask, other=0.0)
        e = tl.load(e_ptr + offs, mask=mask, other=0.0)
        xi = tl.load(xi_ptr + offs, mask=mask, other=0.0)
        x_hat = _x_hat_tl(z, e, alpha_t, sigma_t, CLIP)
        mu_p = a * z + b * x_hat
        tl.store(xh_ptr + offs, x_hat, mask=mask)
        tl.store(mp_ptr + offs, mu_p, mask=mask)
        tl.store(zs_ptr + offs, mu_p + beta * xi, mask=mask)

    @triton.jit
    def _uqdm_kernel(z_ptr, e_ptr, f_ptr, x_ptr, k_in_ptr, u_ptr, c_ptr, bounds_ptr, n_bounds,
                     xh_ptr, mp_ptr, k_ptr, idx_ptr, zs_ptr, n,
                     ENCODE: tl.constexpr, CLIP: tl.constexpr, BLOCK_: tl.constexpr):
        offs = tl.program_id(0) * BLOCK_ + tl.arange(0, BLOCK_)
        mask = offs < n
        alpha_t = tl.load(c_ptr + 0)
        sigma_t = tl.load(c_ptr + 1)
        a = tl.load(c_ptr + 2)
        b = tl.load(c_ptr + 3)
        delta = tl.load(c_ptr + 4)
        c = tl.load(c_ptr + 5)
        z = tl.load(z_ptr + offs, mask=mask, other=0.0)
        e = tl.load(e_ptr + offs, mask=mask, other=0.0)
        f = tl.load(f_ptr + offs, mask=mask, other=1.0)
        u = tl.load(u_ptr + offs, mask=mask, other=0.0)
        x_hat = _x_hat_tl(z, e, alpha_t, sigma_t, CLIP)
        mu_p = a * z + b * x_hat
        if ENCODE:
            x = tl.load(x_ptr + offs, mask=mask, other=0.0)
            mu_q = a * z + b * x
            kf = _rint_tl(tl.div_rn(mu_q - mu_p, delta) + u)
            tl.store(k_ptr + offs, kf.to(tl.int32), mask=mask)
        else:
            kf = tl.load(k_in_ptr + offs, mask=mask, other=0).to(tl.float32)
        idx = _scale_index_tl(tl.div_rn(f * c, delta), bounds_ptr, n_bounds, BLOCK_)
        z_s = mu_p + delta * (kf - u)
        tl.store(xh_ptr + offs, x_hat, mask=mask)
        tl.store(mp_ptr + offs, mu_p, mask=mask)
        tl.store(idx_ptr + offs, idx, mask=mask)
        tl.store(zs_ptr + offs, z_s, mask=mask)


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------

def _use_triton(backend: str, t: torch.Tensor) -> bool:
    if backend == "torch":
        return False
    if backend == "triton":
        if not HAVE_TRITON:
            raise RuntimeError("backend='triton' requested but triton is not installed")
        return True
    if backend != "auto":
        raise ValueError("backend must be 'auto', 'torch' or 'triton'")
    return HAVE_TRITON and t.is_cuda


def _flat(*ts: torch.Tensor):
    shape = ts[0].shape
    for t in ts:
        if t.shape != shape:
            raise ValueError(f"shape mismatch: {tuple(t.shape)} vs {tuple(shape)}")
        if t.dtype != torch.float32:
            raise ValueError(f"expected float32 tensors, got {t.dtype}")
    return [t.contiguous().view(-1) for t in ts]


def _grid(n: int):
    return (max(1, triton.cdiv(n, BLOCK)),)


def diffc_encode(z, eps, x, coefs, clip: bool = False, backend: str = "auto"):
    """(x̂, μ_p, μ_q, m, kl) of one DiffC step for the sender."""
    if not _use_triton(backend, z):
        return diffc_encode_ref(z, eps, x, coefs, clip)
    zf, ef, xf = _flat(z, eps, x)
    outs = [torch.empty_like(zf) for _ in range(5)]
    _diffc_encode_kernel[_grid(zf.numel())](zf, ef, xf, coefs.contiguous(), *outs, zf.numel(), CLIP=bool(clip),
                                            BLOCK_=BLOCK, enable_fp_fusion=False)
    return tuple(o.view(z.shape) for o in outs)


def diffc_decode(z, eps, xi, coefs, clip: bool = False, backend: str = "auto"):
    """(x̂, μ_p, z_s) of one DiffC step for the receiver."""
    if not _use_triton(backend, z):
        return diffc_decode_ref(z, eps, xi, coefs, clip)
    zf, ef, xif = _flat(z, eps, xi)
    outs = [torch.empty_like(zf) for _ in range(3)]
    _diffc_decode_kernel[_grid(zf.numel())](zf, ef, xif, coefs.contiguous(), *outs, zf.numel(), CLIP=bool(clip),
                                            BLOCK_=BLOCK, enable_fp_fusion=False)
    return tuple(o.view(z.shape) for o in outs)


def _uqdm_launch(z, eps, f, x, k, u, coefs, bounds, clip, encode):
    zf, ef, ff, uf = _flat(z, eps, f, u)
    n = zf.numel()
    xf = _flat(x)[0] if encode else zf
    kin = k.contiguous().view(-1).to(torch.int32) if not encode else torch.empty(1, dtype=torch.int32,
                                                                              device=z.device)
    xh, mp, zs = (torch.empty_like(zf) for _ in range(3))
    kout = torch.empty(n, dtype=torch.int32, device=z.device) if encode else kin
    idx = torch.empty(n, dtype=torch.int32, device=z.device)
    b = bounds.to(device=z.device, dtype=torch.float32).contiguous()
    _uqdm_kernel[_grid(n)](zf, ef, ff, xf, kin, uf, coefs.contiguous(), b, b.numel(), xh, mp, kout, idx, zs, n,
                           ENCODE=bool(encode), CLIP=bool(clip), BLOCK_=BLOCK, enable_fp_fusion=False)
    shape = z.shape
    return xh.view(shape), mp.view(shape), kout.view(shape), idx.view(shape), zs.view(shape)


def uqdm_encode(z, eps, f, x, u, coefs, bounds, clip: bool = True, backend: str = "auto"):
    """(x̂, μ_p, k, scale index, z_s) of one UQDM step for the sender."""
    if not _use_triton(backend, z):
        return uqdm_encode_ref(z, eps, f, x, u, coefs, bounds, clip)
    return _uqdm_launch(z, eps, f, x, None, u, coefs, bounds, clip, True)


def uqdm_decode(z, eps, f, k, u, coefs, bounds, clip: bool = True, backend: str = "auto"):
    """(x̂, μ_p, scale index, z_s) of one UQDM step for the receiver."""
    if not _use_triton(backend, z):
        return uqdm_decode_ref(z, eps, f, k, u, coefs, bounds, clip)
    xh, mp, _, idx, zs = _uqdm_launch(z, eps, f, None, k, u, coefs, bounds, clip, False)
    return xh, mp, idx, zs
