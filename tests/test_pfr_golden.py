"""PFR messages are a file format: the same inputs must give the same bytes in every release,
on every instruction set and at every thread count. These digests were recorded before the
encoder's search was re-vectorised (float32 screening scores, batched arrival times, pair-loaded
chord table, sixteen-block Philox) and are unchanged by it; any change to the candidates, the
arrivals, the chosen index or its code shows up here."""

import hashlib

import numpy as np
import pytest

import chansim
from chansim import pfr

GOLDEN = {
    # name: (mode, coordinates, chunk bits, candidate budget, unequal variances) -> sha256(message + sample)
    ("budgeted-d256", "budgeted", 2048, 8.0, 2**12, False):
        "a1e3bee2e69614381db52b66ba465d6184fa4da662a67da1dcb47cd806978823",
    ("budgeted-d1", "budgeted", 4096, 2.0, 2**6, False):
        "111db78c1ad7860b648910ad1ba9918b89b9a17adccc2e908dc4fe357203792e",
    ("exact-quad", "exact", 300, 6.0, None, True):
        "ced52b2766a23362eb2daa3dee67e2aa4e2be47482e62ba9afc1226a9421a70a",
    ("orc-d16", "orc", 512, 6.0, 2**10, False):
        "e187ff3b563a59a1170649f0144da81a1036f6b7597e8759aea9d713af2d412c",
    ("budgeted-quad", "budgeted", 700, 5.0, 2**9, True):
        "601b2038cdc8d5cc4eacea1658afb729561d1f0579b75653e1f74a9b54cc3c55",
}


def _digest(name, mode, n, bits, k, quad, threads):
    rng = np.random.default_rng(sum(map(ord, name)))
    sp = rng.uniform(0.5, 2.0, n)
    sq = sp * (rng.uniform(0.3, 0.9, n) if quad else 1.0)
    mp = rng.normal(0, 1, n)
    mq = mp + sp * rng.normal(0, 1, n) * 0.15
    kw = dict(mode=mode, chunk_bits=bits)
    if k:
        kw["candidates"] = k
    chansim.set_num_threads(threads)
    try:
        sample, data = pfr.encode_gaussian(mq, sq, mp, sp, 12345, 678, **kw)
    finally:
        chansim.set_num_threads(0)
    return hashlib.sha256(bytes(data) + np.asarray(sample).tobytes()).hexdigest()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", list(GOLDEN), ids=[c[0] for c in GOLDEN])
def test_message_bytes_are_pinned(case, threads):
    assert _digest(*case, threads) == GOLDEN[case]


# ---- an independent known answer: a tiny message read by hand from docs/format.md §5 ------------

def _zipf_cum(lam, n_max, p):
    """cum(k) of the truncated Zipf family (§2.8) for N ≤ 2^(p−12): one coding step,
    cum(k) = G(k − 1; W) + (k − 1), W = M − N − 1 (NumPy's exp/log in place of §2.9's)."""
    import math

    M, N, J = 1 << p, n_max, min(8, n_max)
    W = M - N - 1
    f = lambda j: math.exp(-lam * math.log(j))  # noqa: E731

    def integral(a, b):
        big = math.log1p((b - a) / a)
        y = (1 - lam) * big
        return math.exp((1 - lam) * math.log(a)) * big * (math.expm1(y) / y if y != 0 else 1.0)

    S = [0.0]
    for j in range(1, J + 1):
        S.append(S[-1] + f(j))
    S += [S[J] + integral(J + 0.5, m + 0.5) for m in range(J + 1, N + 1)]
    T = {m: integral(m + 0.5, N + 0.5) for m in range(J, N + 1)}
    for m in range(J - 1, -1, -1):
        t = T[J]
        for j in range(J, m, -1):
            t += f(j)
        T[m] = t
    Z = S[J] + T[J]

    def G(m):
        v = S[m] / Z
        return int(W * v) if v <= 0.5 else W - int(W * min(T[m] / Z, 0.5))

    return [G(k - 1) + (k - 1) for k in range(1, N + 2)]  # cum(1) … cum(N + 1)


def test_tiny_message_decoded_by_hand():
    """d = 2, budgeted, K = 16 candidates: every field of §5.2 read by hand, the CRC by zlib, the
    one-symbol rANS payload (§2) decoded by hand under the Zipf law (§2.8), and the index checked
    against an independent scoring of the 16 candidates (§5.1) and the sample against μp + σp·ε."""
    import math
    import struct
    import zlib

    from scipy import stats

    mq, sq = np.array([0.6, -0.3]), np.array([0.8, 0.7])
    mp, sp = np.array([0.1, 0.0]), np.array([1.2, 1.0])
    seed, stream = 2, 77  # chosen so that the index is not 1 (whose rANS state is trivially 1)
    sample, data = pfr.encode_gaussian(mq, sq, mp, sp, seed, stream, mode="budgeted", candidates=16)
    # §5.2 fields.
    assert data[:2] == b"PF" and data[2] == 1 and data[3] == 1  # magic, version, budgeted
    assert data[4] == 2 and data[5] == 1  # d = 2, C = 1 (one-byte varints)
    (lam_q,) = struct.unpack_from("<H", data, 6)
    assert lam_q > 0 and data[8] == 4  # λ·4096; L: indices in [1, 2^4]
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])
    stream_bytes = data[9:-4]
    # §2.1: the default encoder's header (p = 24, 8 lanes, 2^19-symbol segments), n = 1, one segment.
    assert stream_bytes[:7] == b"rA\x01\x18\x08\x13\x01"
    seg = stream_bytes[7:]
    bits = [(seg[i // 8] >> (i % 8)) & 1 for i in range(8 * len(seg))]
    assert bits[0] == 0  # mode A
    b = sum(bits[1 + i] << i for i in range(6))
    x = (1 << (b - 1)) | sum(bits[7 + i] << i for i in range(b - 1))
    assert len(seg) == (7 + b - 1 + 7) // 8 and not any(bits[7 + b - 1:])  # no words, zero padding
    # §2.2 decoding step under the Zipf family (λ, N = 16).
    p, M = 24, 1 << 24
    cum = _zipf_cum(lam_q / 4096, 16, p)
    slot = x % M
    n = next(k for k in range(1, 17) if cum[k - 1] <= slot < cum[k])
    c, f = cum[n - 1], cum[n] - cum[n - 1]
    assert f * (x // M) + slot - c == 1  # the final state of mode A
    assert n == 4 and x > 1  # a non-trivial known answer (pinned; the checks above derive it)
    # §5.1: candidate n is normal_f32 words 2(n − 1), 2(n − 1) + 1; index = argmin log T − log r.
    eps = chansim.prng.normal(seed, stream, 0, 32).astype(np.float64).reshape(16, 2)
    z = mp + sp * eps
    log_r = np.sum(stats.norm.logpdf(z, mq, sq) - stats.norm.logpdf(z, mp, sp), axis=1)
    t = np.cumsum(chansim.prng.exponential(seed ^ 0x9E3779B97F4A7C15, stream, 0, 16, np.float64))
    assert n == int(np.argmin(np.log(t) - log_r)) + 1
    np.testing.assert_array_equal(sample, mp + sp * eps[n - 1])
    assert math.isfinite(float(sample.sum()))
