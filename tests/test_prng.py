"""chansim.prng: known answers, core == NumPy reference bit for bit, random access,
thread-count invariance and argument validation."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chansim
from chansim import prng
from chansim.prng import reference as ref

U64 = st.integers(min_value=0, max_value=2**64 - 1)
VARIATES = ["uniform", "normal", "exponential"]
DTYPES = [np.float32, np.float64]


def _bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


#: Random123's Philox4x32-10 known-answer vectors, vendored so the test runs on a clean clone
#: (a copy of shared/data/philox4x32_10_kat.txt; the C++ ctest still reads the shared one).
KAT_FILE = Path(__file__).resolve().parent / "data" / "philox4x32_10_kat.txt"


def _kat_vectors():
    rows = []
    for line in KAT_FILE.read_text().splitlines():
        if line.startswith("philox4x32 10 "):
            words = [int(x, 16) for x in line.split()[2:]]
            rows.append((words[0:4], words[4:6], words[6:10]))
    assert len(rows) >= 3
    return rows


def test_vendored_kat_file_matches_the_shared_copy(shared_data):
    """Where the shared data directory exists, the vendored vectors are the same file."""
    assert KAT_FILE.read_bytes() == (shared_data / "philox4x32_10_kat.txt").read_bytes()


def test_philox_known_answers():
    for ctr, key, expected in _kat_vectors():
        c = np.array(ctr, np.uint32)
        k = np.array(key, np.uint32)
        assert prng.philox4x32(c, k).tolist() == expected
        assert ref.philox4x32(c, k).tolist() == expected
        # The same vector through the (seed, stream, index) addressing.
        seed = key[0] | key[1] << 32
        block = ctr[0] | ctr[1] << 32
        stream = ctr[2] | ctr[3] << 32
        if block < 2**62:
            assert prng.words(seed, stream, 4 * block, 4).tolist() == expected
            assert ref.words(seed, stream, 4 * block, 4).tolist() == expected


def test_philox_broadcasts_over_keys():
    ctr = np.arange(40, dtype=np.uint32).reshape(10, 4)
    key = np.array([[1, 2], [3, 4]], np.uint32)[:, None, :]
    out = prng.philox4x32(ctr, key)
    assert out.shape == (2, 10, 4)
    np.testing.assert_array_equal(out, ref.philox4x32(ctr, key))


@settings(derandomize=True, max_examples=60, deadline=None)
@given(seed=U64, stream=U64, start=st.integers(0, 2**62), n=st.integers(0, 700),
       variate=st.sampled_from(VARIATES), dtype=st.sampled_from(DTYPES))
def test_core_matches_reference_bitwise(seed, stream, start, n, variate, dtype):
    a = getattr(prng, variate)(seed, stream, start, n, dtype)
    b = getattr(ref, variate)(seed, stream, start, n, dtype)
    assert a.dtype == b.dtype == dtype
    np.testing.assert_array_equal(_bits(a), _bits(b))


@pytest.mark.parametrize("variate", VARIATES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_core_matches_reference_large(variate, dtype):
    # 2**18 draws crosses many tiles, both tails and the far tail region.
    n = 1 << 18
    a = getattr(prng, variate)(12345, 678, 3, n, dtype)
    b = getattr(ref, variate)(12345, 678, 3, n, dtype)
    np.testing.assert_array_equal(_bits(a), _bits(b))


@pytest.mark.parametrize("variate", VARIATES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_thread_count_and_split_invariance(variate, dtype):
    n = 1_000_003
    fn = getattr(prng, variate)
    try:
        chansim.set_num_threads(1)
        one = fn(99, 5, 11, n, dtype)
        chansim.set_num_threads(2)
        two = fn(99, 5, 11, n, dtype)
    finally:
        chansim.set_num_threads(0)
    np.testing.assert_array_equal(_bits(one), _bits(two))
    # Random access: any sub-range regenerated on its own is identical.
    for lo, hi in [(0, 1), (17, 400_017), (n - 5, n)]:
        part = fn(99, 5, 11 + lo, hi - lo, dtype)
        np.testing.assert_array_equal(_bits(part), _bits(one[lo:hi]))


def test_words_random_access_and_out():
    w = prng.words(1, 2, 0, 1000)
    out = np.empty(10, np.uint32)
    prng.words(1, 2, 500, 10, out=out)
    np.testing.assert_array_equal(out, w[500:510])
    z = np.empty(7, np.float64)
    assert prng.normal(3, 4, 9, None, out=z) is z
    np.testing.assert_array_equal(z, prng.normal(3, 4, 9, 7, np.float64))


def test_open_interval_and_extremes():
    u32 = ref.uniform_f32(np.array([0, 2**32 - 1], np.uint32))
    assert 0 < u32[0] < u32[1] < 1
    u64 = ref.uniform_f64(np.array([0, 2**64 - 1], np.uint64))
    assert 0 < u64[0] < u64[1] < 1
    # Extreme words give the documented extreme variates.
    z = ref.ndtri(ref.uniform_f64_from32(np.array([0, 2**32 - 1], np.uint32)))
    assert z[0] == -z[1] and 6.33 < z[1] < 6.34
    zz = ref.ndtri(u64)
    assert zz[0] == -zz[1] and 8.2 < zz[1] < 8.3


def test_stream_id_packing():
    assert prng.stream_id("user", 0, 0) == 0
    assert prng.stream_id(2, 3, 4) == (2 << 56) | (3 << 40) | 4
    assert prng.stream_id("dither", 65535, 2**40 - 1) == (2 << 56) | (65535 << 40) | (2**40 - 1)
    for bad in [dict(purpose=256), dict(step=65536), dict(chunk=2**40), dict(purpose="nope")]:
        kw = dict(purpose=0, step=0, chunk=0) | bad
        with pytest.raises(ValueError):
            prng.stream_id(**kw)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(seed=-1), "seed"),
        (dict(seed=2**64), "seed"),
        (dict(stream=2**64), "stream"),
        (dict(start=-3), "start"),
        (dict(n=-1), "non-negative"),
        (dict(n=2**33), "limit"),
        (dict(n=1.5), "integer"),
        (dict(seed=1.0), "integer"),
        (dict(seed=True), "bool"),
        (dict(dtype=np.int32), "dtype"),
        (dict(dtype=np.float16), "dtype"),
        (dict(dtype="banana"), "dtype"),
        (dict(start=2**64 - 2, n=5), "range"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    args = dict(seed=1, stream=2, start=0, n=4, dtype=np.float32) | kwargs
    with pytest.raises(ValueError, match=match):
        prng.normal(**args)


def test_bad_out_and_philox_arguments():
    with pytest.raises(ValueError, match="contiguous"):
        prng.uniform(1, 2, 0, None, out=np.empty((4, 4), np.float32)[:, 0])
    with pytest.raises(ValueError, match="dtype"):
        prng.uniform(1, 2, 0, None, out=np.empty(4, np.int64))
    with pytest.raises(ValueError, match="dtype"):
        prng.words(1, 2, 0, None, out=np.empty(4, np.int32))
    with pytest.raises(ValueError, match="range"):
        prng.uniform(1, 2, 2**63 - 1, 2, np.float64)
    with pytest.raises(ValueError, match="uint32"):
        prng.philox4x32(np.zeros(4, np.int64), np.zeros(2, np.uint32))
    with pytest.raises(ValueError, match="shape"):
        prng.philox4x32(np.zeros(3, np.uint32), np.zeros(2, np.uint32))
    with pytest.raises(ValueError, match="broadcast"):
        prng.philox4x32(np.zeros((3, 4), np.uint32), np.zeros((2, 2), np.uint32))


def test_native_core_validates_without_wrappers():
    core = chansim._core
    with pytest.raises(ValueError, match="dtype"):
        core.fill(1, 0, 0, 0, np.empty(3, np.int16))
    with pytest.raises(ValueError, match="variate"):
        core.fill(7, 0, 0, 0, np.empty(3, np.float32))
    with pytest.raises(ValueError, match="read-only"):
        a = np.empty(3, np.float32)
        a.flags.writeable = False
        core.fill(1, 0, 0, 0, a)
    with pytest.raises(ValueError, match="range"):
        core.fill(1, 0, 0, 2**63, np.empty(3, np.float64))
    with pytest.raises(TypeError):
        core.fill(1, -1, 0, 0, np.empty(3, np.float32))
