"""Smoke test of an installed chansim wheel: NumPy only, no PyTorch, no pytest.

Run by cibuildwheel on every wheel it builds (pyproject.toml, [tool.cibuildwheel]
test-command) and by .ci/run on the repaired manylinux wheel, always from outside
the source tree so the installed package is what gets imported.

Checks: the import (and that it pulls in no torch), Philox4x32-10 against the
Random123 known answers, a rANS and a PFR round trip, and the exact bytes of
each: SHA-256 digests of a float64 normal/exponential stream, a rANS stream
and a PFR message, pinned here. The formats promise the same bits on every
platform (docs/platforms.md), so a digest that differs on one wheel platform is
a portability bug, not a test to update; a digest that differs everywhere
means a format changed on purpose, and then the digests are updated with it.

Exit status 0 on success; any failure raises.
"""

import hashlib
import sys

import numpy as np

import chansim
from chansim import pfr, prng, rans

# The core (prng, rans, dq, pfr, grc) must never need PyTorch.
assert "torch" not in sys.modules, "importing chansim's core pulled in torch"


def digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else np.ascontiguousarray(p).tobytes())
    return h.hexdigest()[:16]


def le(a: np.ndarray) -> np.ndarray:
    """The array as little-endian bytes' view (the digests are of little-endian data)."""
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))


# ---- Philox4x32-10, Random123's known-answer vectors -------------------------
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]
ctr = np.array([c for c, _, _ in KAT], dtype=np.uint32)
key = np.array([k for _, k, _ in KAT], dtype=np.uint32)
want = np.array([o for _, _, o in KAT], dtype=np.uint32)
got = prng.philox4x32(ctr, key)
assert np.array_equal(got, want), f"Philox KAT: {got} != {want}"

# Random access: element i depends only on (seed, stream, start + i).
s = prng.stream_id("dither", step=3, chunk=0)
z = prng.normal(42, s, 0, 4096, dtype=np.float64)
assert prng.normal(42, s, 1234, 1, dtype=np.float64)[0] == z[1234]
e = prng.exponential(7, 11, 0, 4096, dtype=np.float64)
u = prng.uniform(7, 11, 0, 4096, dtype=np.float32)
assert 0.0 < u.min() and u.max() < 1.0

# ---- rANS round trip ----------------------------------------------------------
x = np.round(z[:2000] * 3.0).astype(np.int32)
mu = np.linspace(-1.0, 1.0, x.size)
enc = rans.Encoder()
enc.encode_gaussian(x, means=mu, scales=3.0)
enc.encode_categorical(np.array([0, 2, 1, 2], dtype=np.int32), np.array([0.25, 0.25, 0.5]))
rans_data = enc.finish()
dec = rans.Decoder(rans_data)
assert np.array_equal(dec.decode_gaussian(mu, 3.0, shape=x.shape), x), "rANS round trip (gaussian)"
assert np.array_equal(dec.decode_categorical(np.array([0.25, 0.25, 0.5]), shape=(4,)), [0, 2, 1, 2]), \
    "rANS round trip (categorical)"

# ---- PFR round trip (exact mode) ----------------------------------------------
mu_q = np.linspace(-1.0, 1.0, 1000)
sample, pfr_data = pfr.encode_gaussian(mu_q, 0.5, 0.0, 1.0, seed=42, stream=7, chunk_bits=10)
back = pfr.decode_gaussian(pfr_data, 0.0, 1.0, seed=42, stream=7)
assert np.array_equal(np.asarray(back).view(np.uint8), np.asarray(sample).view(np.uint8)), "PFR round trip"

# ---- the same bits on every platform ------------------------------------------
found = {
    "normal_f64": digest(le(z)),
    "exponential_f64": digest(le(e)),
    "uniform_f32": digest(le(u)),
    "rans_bytes": digest(rans_data),
    "pfr_bytes": digest(pfr_data),
    "pfr_sample": digest(le(np.asarray(sample))),
}
PINNED = {
    "normal_f64": "bb77ce9120b90251",
    "exponential_f64": "6291d1e53f3fd29f",
    "uniform_f32": "b0af0187a2975cfc",
    "rans_bytes": "890f86bf26d22a71",
    "pfr_bytes": "1409947a42f5c929",
    "pfr_sample": "7f901e7275843d2a",
}
if "--print" in sys.argv:
    for k, v in found.items():
        print(f'    "{k}": "{v}",')
    sys.exit(0)
bad = {k: (found[k], v) for k, v in PINNED.items() if found[k] != v}
assert not bad, f"bytes differ from the pinned digests (found, pinned): {bad}"

print(f"chansim {getattr(chansim, '__version__', '?')} smoke test passed "
      f"(numpy {np.__version__}, python {sys.version.split()[0]}, isa {prng.isa()}, {chansim._core.__file__})")
