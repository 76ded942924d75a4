"""Triton kernels for chansim's addressed random variates.

Bit-identical to the native core and to :mod:`chansim.prng.reference`: the same
Philox4x32-10 addressing and the same float64 expressions in the same order.
Triton-specific precautions keep that promise on a GPU: every float64
constant is loaded from a float64 table in memory (Triton would otherwise
materialise Python float literals as float32 first); all transcendental math is
done in float64, whose division and square root are correctly rounded on GPUs
(only float32 has approximate variants); kernels are compiled with
``enable_fp_fusion=False`` so no multiply-add is contracted into an FMA.

Each program handles ``BLOCK`` Philox blocks and writes the variates whose
addresses fall inside ``[start, start + n)``.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from chansim import prng_reference as _ref
from chansim._validate import count, float_dtype, u64

# Coefficient table shared by every kernel (indices documented next to each use).
_AS241_A = (2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
            4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
            1.3314166789178437745e+2, 3.3871328727963666080e+0)
_AS241_B = (5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
            2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
            4.2313330701600911252e+1, 1.0)
_AS241_C = (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
            1.27045825245236838258e+0, 3.64784832476320460504e+0, 5.76949722146069140550e+0,
            4.63033784615654529590e+0, 1.42343711074968357734e+0)
_AS241_D = (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
            1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e+0,
            2.05319162663775882187e+0, 1.0)
_AS241_E = (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
            2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e+0,
            5.46378491116411436990e+0, 6.65790464350110377720e+0)
_AS241_F = (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
            7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
            5.99832206555887937690e-1, 1.0)
# 0..6 log polynomial, 7 ln2_hi, 8 ln2_lo, 9 0.5, 10 1.0, 11 2.0, 12 0.0,
# 13 2^-32, 14 2^-33, 15 2^-52, 16 2^-53, 17 0.180625, 18 0.425, 19 1.6, 20 5.0,
# 21..28 A, 29..36 B, 37..44 C, 45..52 D, 53..60 E, 61..68 F
_TABLE = np.array(
    list(_ref._LG)
    + [6.93147180369123816490e-01, 1.90821492927058770002e-10, 0.5, 1.0, 2.0, 0.0,
       2.0 ** -32, 2.0 ** -33, 2.0 ** -52, 2.0 ** -53, 0.180625, 0.425, 1.6, 5.0]
    + list(_AS241_A) + list(_AS241_B) + list(_AS241_C) + list(_AS241_D) + list(_AS241_E) + list(_AS241_F),
    dtype=np.float64,
)


@triton.jit
def _philox(c0, c1, c2, c3, k0, k1):
    for _ in tl.static_range(10):
        _c0 = c0
        _c2 = c2
        c0 = tl.umulhi(_c2, 0xCD9E8D57) ^ c1 ^ k0
        c2 = tl.umulhi(_c0, 0xD2511F53) ^ c3 ^ k1
        c1 = _c2 * 0xCD9E8D57
        c3 = _c0 * 0xD2511F53
        k0 = k0 + 0x9E3779B9
        k1 = k1 + 0xBB67AE85
    return c0, c1, c2, c3


@triton.jit
def _horner8(tab, base: tl.constexpr, r):
    acc = tl.load(tab + base) * r + tl.load(tab + base + 1)
    for j in tl.static_range(2, 8):
        acc = acc * r + tl.load(tab + base + j)
    return acc


@triton.jit
def _det_log(tab, x):
    u = x.to(tl.uint64, bitcast=True)
    hx = ((u >> 32) + (0x3FF00000 - 0x3FE6A09E)) & 0xFFFFFFFF
    k = (hx >> 20).to(tl.int32) - 0x3FF
    hm = (hx & 0x000FFFFF) + 0x3FE6A09E
    m = ((hm << 32) | (u & 0xFFFFFFFF)).to(tl.float64, bitcast=True)
    one = tl.load(tab + 10)
    f = m - one
    hfsq = tl.load(tab + 9) * f * f
    s = f / (tl.load(tab + 11) + f)
    z = s * s
    w = z * z
    t1 = w * (tl.load(tab + 1) + w * (tl.load(tab + 3) + w * tl.load(tab + 5)))
    t2 = z * (tl.load(tab + 0) + w * (tl.load(tab + 2) + w * (tl.load(tab + 4) + w * tl.load(tab + 6))))
    R = t2 + t1
    dk = k.to(tl.float64)
    return s * (hfsq + R) + dk * tl.load(tab + 8) - hfsq + f + dk * tl.load(tab + 7)


@triton.jit
def _ndtri(tab, p):
    zero = tl.load(tab + 12)
    q = p - tl.load(tab + 9)
    r = tl.load(tab + 17) - q * q
    central = q * _horner8(tab, 21, r) / _horner8(tab, 29, r)
    t = tl.where(q < zero, p, tl.load(tab + 10) - p)
    s = tl.sqrt(zero - _det_log(tab, t))
    mid = _horner8(tab, 37, s - tl.load(tab + 19)) / _horner8(tab, 45, s - tl.load(tab + 19))
    far = _horner8(tab, 53, s - tl.load(tab + 20)) / _horner8(tab, 61, s - tl.load(tab + 20))
    v = tl.where(s <= tl.load(tab + 20), mid, far)
    lim = tl.load(tab + 18)
    tail = tl.where(q < zero, zero - v, v)
    return tl.where((q >= zero - lim) & (q <= lim), central, tail)


@triton.jit
def _transform32(tab, w, VARIATE: tl.constexpr):
    # VARIATE: 0 uniform, 1 normal, 2 exponential (float32 output)
    if VARIATE == 0:
        out = (w >> 9).to(tl.float32) * 1.1920928955078125e-07 + 5.9604644775390625e-08
    else:
        u = w.to(tl.float64) * tl.load(tab + 13) + tl.load(tab + 14)
        if VARIATE == 1:
            out = _ndtri(tab, u).to(tl.float32)
        else:
            out = (tl.load(tab + 12) - _det_log(tab, u)).to(tl.float32)
    return out


@triton.jit
def _transform64(tab, lo, hi, VARIATE: tl.constexpr):
    x = lo.to(tl.uint64) | (hi.to(tl.uint64) << 32)
    u = (x >> 12).to(tl.float64) * tl.load(tab + 15) + tl.load(tab + 16)
    if VARIATE == 0:
        out = u
    elif VARIATE == 1:
        out = _ndtri(tab, u)
    else:
        out = tl.load(tab + 12) - _det_log(tab, u)
    return out


@triton.jit
def _fill_kernel(out_ptr, tab, seed_lo, seed_hi, stream_lo, stream_hi, first_block_lo, first_block_hi,
                 start_in_first, n, VARIATE: tl.constexpr, WIDE: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    j = (pid * BLOCK + tl.arange(0, BLOCK)).to(tl.uint64)
    first = first_block_lo.to(tl.uint64) | (first_block_hi.to(tl.uint64) << 32)
    b = first + j
    c0 = (b & 0xFFFFFFFF).to(tl.uint32)
    c1 = (b >> 32).to(tl.uint32)
    c2 = tl.zeros([BLOCK], tl.uint32) + stream_lo.to(tl.uint32)
    c3 = tl.zeros([BLOCK], tl.uint32) + stream_hi.to(tl.uint32)
    k0 = tl.zeros([BLOCK], tl.uint32) + seed_lo.to(tl.uint32)
    k1 = tl.zeros([BLOCK], tl.uint32) + seed_hi.to(tl.uint32)
    w0, w1, w2, w3 = _philox(c0, c1, c2, c3, k0, k1)
    jj = (pid * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    if WIDE:
        # float64: values 2j and 2j + 1 of the tile, relative to the first value.
        pos0 = 2 * jj - start_in_first
        pos1 = pos0 + 1
        tl.store(out_ptr + pos0, _transform64(tab, w0, w1, VARIATE), mask=(pos0 >= 0) & (pos0 < n))
        tl.store(out_ptr + pos1, _transform64(tab, w2, w3, VARIATE), mask=(pos1 >= 0) & (pos1 < n))
    else:
        pos0 = 4 * jj - start_in_first
        tl.store(out_ptr + pos0, _transform32(tab, w0, VARIATE), mask=(pos0 >= 0) & (pos0 < n))
        tl.store(out_ptr + pos0 + 1, _transform32(tab, w1, VARIATE), mask=(pos0 + 1 >= 0) & (pos0 + 1 < n))
        tl.store(out_ptr + pos0 + 2, _transform32(tab, w2, VARIATE), mask=(pos0 + 2 >= 0) & (pos0 + 2 < n))
        tl.store(out_ptr + pos0 + 3, _transform32(tab, w3, VARIATE), mask=(pos0 + 3 >= 0) & (pos0 + 3 < n))


_BLOCK = 256
_TABLES: dict = {}


def _table(device) -> torch.Tensor:
    key = str(device)
    if key not in _TABLES:
        _TABLES[key] = torch.from_numpy(_TABLE.copy()).to(device)
    return _TABLES[key]


def _fill(variate: int, seed, stream, start, n, dtype, device) -> torch.Tensor:
    seed, stream, start, n = u64(seed, "seed"), u64(stream, "stream"), u64(start, "start"), count(n)
    dt = float_dtype(dtype)
    wide = dt == np.float64
    out = torch.empty(n, dtype=torch.float64 if wide else torch.float32, device=device)
    if n == 0:
        return out
    per_block = 2 if wide else 4
    if start + n > (1 << (63 if wide else 64)):
        raise ValueError("start + n is beyond the addressable range of this variate")
    first_block = start // per_block
    start_in_first = start - first_block * per_block
    nblocks = (start_in_first + n + per_block - 1) // per_block
    grid = (triton.cdiv(nblocks, _BLOCK),)
    _fill_kernel[grid](
        out, _table(out.device), seed & 0xFFFFFFFF, seed >> 32, stream & 0xFFFFFFFF, stream >> 32,
        first_block & 0xFFFFFFFF, first_block >> 32, start_in_first, n,
        VARIATE=variate, WIDE=wide, BLOCK=_BLOCK, enable_fp_fusion=False,
    )
    return out


def uniform(seed, stream, start, n, dtype=np.float32, device="cpu") -> torch.Tensor:
    """Same values as :func:`chansim.prng.uniform`, as a torch tensor on ``device``."""
    return _fill(0, seed, stream, start, n, dtype, device)


def normal(seed, stream, start, n, dtype=np.float32, device="cpu") -> torch.Tensor:
    """Same values as :func:`chansim.prng.normal`, as a torch tensor on ``device``."""
    return _fill(1, seed, stream, start, n, dtype, device)


def exponential(seed, stream, start, n, dtype=np.float32, device="cpu") -> torch.Tensor:
    """Same values as :func:`chansim.prng.exponential`, as a torch tensor on ``device``."""
    return _fill(2, seed, stream, start, n, dtype, device)
