"""Pure-NumPy reference of :mod:`chansim.prng`, bit-identical to the native core.

Philox runs in integer arithmetic (uint64 products of uint32 words); the
transforms repeat the native expressions operation for operation in float64, so
every result matches the core bit for bit. It is slow on purpose: clarity first.
Exposed as ``chansim.prng.reference``.
"""

from __future__ import annotations

import numpy as np

from ._validate import count, float_dtype, u64

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32(counter, key) -> np.ndarray:
    """Philox4x32-10 of counter (uint32[..., 4]) under key (uint32[..., 2])."""
    c = np.asarray(counter, dtype=np.uint32)
    k = np.asarray(key, dtype=np.uint32)
    shape = np.broadcast_shapes(c.shape[:-1], k.shape[:-1])
    c = np.broadcast_to(c, shape + (4,)).astype(np.uint64)
    k = np.broadcast_to(k, shape + (2,)).astype(np.uint64)
    c0, c1, c2, c3 = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    k0, k1 = k[..., 0], k[..., 1]
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & _MASK32, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & _MASK32
        k0 = (k0 + np.uint64(_W0)) & _MASK32
        k1 = (k1 + np.uint64(_W1)) & _MASK32
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def _blocks(seed: int, stream: int, block0: int, nblocks: int) -> np.ndarray:
    """Words of blocks block0 .. block0 + nblocks - 1, shape (nblocks, 4)."""
    b = (np.uint64(block0) + np.arange(nblocks, dtype=np.uint64)) if nblocks else np.zeros(0, np.uint64)
    ctr = np.empty((nblocks, 4), dtype=np.uint32)
    ctr[:, 0] = (b & _MASK32).astype(np.uint32)
    ctr[:, 1] = (b >> np.uint64(32)).astype(np.uint32)
    ctr[:, 2] = stream & 0xFFFFFFFF
    ctr[:, 3] = stream >> 32
    key = np.array([seed & 0xFFFFFFFF, seed >> 32], dtype=np.uint32)
    return philox4x32(ctr, key)


def words(seed, stream, start, n) -> np.ndarray:
    """Raw uint32 words start .. start + n - 1 of (seed, stream)."""
    seed, stream, start, n = u64(seed, "seed"), u64(stream, "stream"), u64(start, "start"), count(n)
    if n == 0:
        return np.zeros(0, np.uint32)
    first, last = start >> 2, (start + n - 1) >> 2
    w = _blocks(seed, stream, first, last - first + 1).reshape(-1)
    off = start - 4 * first
    return w[off : off + n].copy()


def _u64_values(seed, stream, start, n) -> np.ndarray:
    """64-bit values start .. start + n - 1 (words 2i low, 2i + 1 high)."""
    w = words(seed, stream, 2 * start, 2 * n).astype(np.uint64)
    return w[0::2] | (w[1::2] << np.uint64(32))


# ---- transforms: the same expressions as csrc/common/transforms.h -----------

def uniform_f32(w: np.ndarray) -> np.ndarray:
    return (w >> np.uint32(9)).astype(np.float32) * np.float32(1.1920928955078125e-07) + np.float32(
        5.9604644775390625e-08
    )


def uniform_f64(x: np.ndarray) -> np.ndarray:
    return (x >> np.uint64(12)).astype(np.float64) * 2.220446049250313080847263336181640625e-16 + (
        1.1102230246251565404236316680908203125e-16
    )


def uniform_f64_from32(w: np.ndarray) -> np.ndarray:
    return w.astype(np.float64) * 2.3283064365386962890625e-10 + 1.16415321826934814453125e-10


_LG = (
    6.666666666666735130e-01,
    3.999999999940941908e-01,
    2.857142874366239149e-01,
    2.222219843214978396e-01,
    1.818357216161805012e-01,
    1.531383769920937332e-01,
    1.479819860511658591e-01,
)


def det_log(x: np.ndarray) -> np.ndarray:
    """Natural log of positive normal doubles (FreeBSD/musl reduction), < 1 ulp."""
    x = np.asarray(x, dtype=np.float64)
    u = x.view(np.uint64)
    hx = ((u >> np.uint64(32)) + np.uint64(0x3FF00000 - 0x3FE6A09E)) & _MASK32
    k = (hx >> np.uint64(20)).astype(np.int64) - 0x3FF
    hm = (hx & np.uint64(0x000FFFFF)) + np.uint64(0x3FE6A09E)
    m = ((hm << np.uint64(32)) | (u & _MASK32)).view(np.float64)
    f = m - 1.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    lg1, lg2, lg3, lg4, lg5, lg6, lg7 = _LG
    t1 = w * (lg2 + w * (lg4 + w * lg6))
    t2 = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7)))
    R = t2 + t1
    dk = k.astype(np.float64)
    return s * (hfsq + R) + dk * 1.90821492927058770002e-10 - hfsq + f + dk * 6.93147180369123816490e-01


def _ndtri_central(q):
    r = 0.180625 - q * q
    num = ((((((2.5090809287301226727e+3 * r + 3.3430575583588128105e+4) * r + 6.7265770927008700853e+4) * r
              + 4.5921953931549871457e+4) * r + 1.3731693765509461125e+4) * r + 1.9715909503065514427e+3) * r
           + 1.3314166789178437745e+2) * r + 3.3871328727963666080e+0
    den = ((((((5.2264952788528545610e+3 * r + 2.8729085735721942674e+4) * r + 3.9307895800092710610e+4) * r
              + 2.1213794301586595867e+4) * r + 5.3941960214247511077e+3) * r + 6.8718700749205790830e+2) * r
           + 4.2313330701600911252e+1) * r + 1.0
    return q * num / den


def _ndtri_tail(t):
    s = np.sqrt(0.0 - det_log(t))
    r = s - 1.6
    num_a = ((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r + 2.41780725177450611770e-1) * r
                + 1.27045825245236838258e+0) * r + 3.64784832476320460504e+0) * r + 5.76949722146069140550e+0) * r
             + 4.63033784615654529590e+0) * r + 1.42343711074968357734e+0
    den_a = ((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r + 1.51986665636164571966e-2) * r
                + 1.48103976427480074590e-1) * r + 6.89767334985100004550e-1) * r + 1.67638483018380384940e+0) * r
             + 2.05319162663775882187e+0) * r + 1.0
    r = s - 5.0
    num_b = ((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 1.24266094738807843860e-3) * r
                + 2.65321895265761230930e-2) * r + 2.96560571828504891230e-1) * r + 1.78482653991729133580e+0) * r
             + 5.46378491116411436990e+0) * r + 6.65790464350110377720e+0
    den_b = ((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r + 1.84631831751005468180e-5) * r
                + 7.86869131145613259100e-4) * r + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r
             + 5.99832206555887937690e-1) * r + 1.0
    return np.where(s <= 5.0, num_a / den_a, num_b / den_b)


def ndtri(p: np.ndarray) -> np.ndarray:
    """Standard normal quantile (AS 241) of p in (0, 1) on chansim's uniform grids."""
    p = np.asarray(p, dtype=np.float64)
    q = p - 0.5
    central = (q >= -0.425) & (q <= 0.425)
    out = np.empty_like(p)
    with np.errstate(all="ignore"):
        out[central] = _ndtri_central(q[central])
        tail = ~central
        pt = p[tail]
        qt = q[tail]
        t = np.where(qt < 0.0, pt, 1.0 - pt)
        v = _ndtri_tail(t)
        out[tail] = np.where(qt < 0.0, 0.0 - v, v)
    return out


# ---- the public functions, same signatures as chansim.prng --------------------

def uniform(seed, stream, start, n, dtype=np.float32) -> np.ndarray:
    dt = float_dtype(dtype)
    if dt == np.float32:
        return uniform_f32(words(seed, stream, start, n))
    return uniform_f64(_u64_values(seed, stream, start, count(n)))


def normal(seed, stream, start, n, dtype=np.float32) -> np.ndarray:
    dt = float_dtype(dtype)
    if dt == np.float32:
        return ndtri(uniform_f64_from32(words(seed, stream, start, n))).astype(np.float32)
    return ndtri(uniform_f64(_u64_values(seed, stream, start, count(n))))


def exponential(seed, stream, start, n, dtype=np.float32) -> np.ndarray:
    dt = float_dtype(dtype)
    if dt == np.float32:
        return (0.0 - det_log(uniform_f64_from32(words(seed, stream, start, n)))).astype(np.float32)
    return 0.0 - det_log(uniform_f64(_u64_values(seed, stream, start, count(n))))
