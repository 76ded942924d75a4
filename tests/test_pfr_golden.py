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
