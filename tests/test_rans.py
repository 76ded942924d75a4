"""chansim.rans: round trips of every family over extreme parameters, mixed call
sequences, dtypes and broadcasting, the dithered-grid reparameterisation, and a
clear ValueError for every bad argument."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chansim
from chansim import rans

INT32 = st.integers(-(2**31), 2**31 - 1)
PRECISIONS = st.sampled_from([16, 20, 24, 30])
SHAPES = ["gaussian", "logistic", "laplace"]


def _round_trip(calls, **options):
    """Encode [(family, symbols, *params)], decode in order, compare."""
    enc = rans.Encoder(**options)
    for family, symbols, *params in calls:
        getattr(enc, f"encode_{family}")(symbols, *params)
    data = enc.finish()
    dec = rans.Decoder(data)
    for family, symbols, *params in calls:
        shape = np.shape(symbols)
        got = getattr(dec, f"decode_{family}")(*params, shape=shape)
        assert got.dtype == np.int32 and got.shape == shape
        np.testing.assert_array_equal(got, np.asarray(symbols, dtype=np.int64).astype(np.int32))
    assert dec.remaining == 0
    return data


# ---- round trips -------------------------------------------------------------


@settings(derandomize=True, max_examples=120, deadline=None)
@given(family=st.sampled_from(SHAPES), n=st.integers(0, 300), log_scale=st.floats(-3, 4),
       mean=st.floats(-1e6, 1e6), spread=st.floats(0, 8), escape_every=st.integers(0, 7),
       precision=PRECISIONS, lanes=st.integers(1, 32), seed=st.integers(0, 2**32 - 1))
def test_location_scale_round_trip(family, n, log_scale, mean, spread, escape_every, precision, lanes, seed):
    """Scales 1e-3..1e4, means up to ±1e6 (fractional), symbols inside, at the edge
    of and far outside the window (escapes), any precision and lane count."""
    rng = np.random.default_rng(seed)
    scale = 10.0**log_scale
    means = mean + rng.uniform(-5, 5, n)
    scales = scale * np.exp(rng.uniform(-1, 1, n))
    symbols = np.clip(np.round(means + spread * scales * rng.standard_normal(n)), -(2**31), 2**31 - 1)
    if escape_every:
        symbols[::escape_every] = rng.integers(-(2**31), 2**31, len(symbols[::escape_every]))
    _round_trip([(family, symbols.astype(np.int64), means, scales)], precision=precision, lanes=lanes)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(family=st.sampled_from(SHAPES), n=st.integers(0, 200), width=st.floats(1e-3, 1e3),
       mean=st.floats(-100, 100), log_scale=st.floats(-3, 3), seed=st.integers(0, 2**32 - 1))
def test_dithered_round_trip_and_reparameterisation(family, n, width, mean, log_scale, seed):
    """The *_dithered families are the plain family with mean / width + offset and
    scale / width: same bytes, same symbols."""
    rng = np.random.default_rng(seed)
    x = mean + 10.0**log_scale * rng.standard_normal(n)
    offset = rng.uniform(-0.5, 0.5, n)
    k = np.round(x / width + offset).astype(np.int32)
    scales = np.full(n, 10.0**log_scale)
    a = _round_trip([(f"{family}_dithered", k, mean, scales, width, offset)])
    enc = rans.Encoder()
    getattr(enc, f"encode_{family}")(k, mean / width + offset, scales / width)
    assert enc.finish() == a


@pytest.mark.parametrize("family", SHAPES)
def test_dithered_families_keep_their_older_uniform_names(family):
    """encode_/decode_<family>_uniform are aliases of <family>_dithered: the same
    bytes, decodable by either name; encode_uniform/decode_uniform stay the
    integer-uniform family."""
    rng = np.random.default_rng(11)
    n = 5000
    offset = rng.uniform(-0.5, 0.5, n)
    k = np.round(rng.normal(0.3, 2.0, n) / 0.75 + offset).astype(np.int32)
    streams = []
    for name in ("dithered", "uniform"):
        enc = rans.Encoder()
        getattr(enc, f"encode_{family}_{name}")(k, 0.3, 2.0, 0.75, offset)
        enc.encode_uniform(k[:100], -(2**31), 2**31 - 1)
        streams.append(enc.finish())
    assert streams[0] == streams[1]
    for name in ("dithered", "uniform"):
        dec = rans.Decoder(streams[0])
        np.testing.assert_array_equal(getattr(dec, f"decode_{family}_{name}")(0.3, 2.0, 0.75, offset), k)
        np.testing.assert_array_equal(dec.decode_uniform(-(2**31), 2**31 - 1, shape=100), k[:100])


@settings(derandomize=True, max_examples=60, deadline=None)
@given(k=st.integers(1, 300), n=st.integers(0, 300), shared=st.booleans(), zeros=st.booleans(),
       precision=PRECISIONS, seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]))
def test_categorical_round_trip(k, n, shared, zeros, precision, seed, dtype):
    """Shared and per-symbol tables, zero-probability entries, symbols outside [0, K)."""
    rng = np.random.default_rng(seed)
    w = rng.exponential(size=k if shared else (n, k))
    if zeros:
        w[..., ::3] = 0
        w[..., -1] += 1e-3
    p = (w / w.sum(axis=-1, keepdims=True)).astype(dtype)
    symbols = rng.integers(-2, k + 2, n)
    _round_trip([("categorical", symbols, p)], precision=precision)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(n=st.integers(0, 200), lam=st.floats(0.05, 50), n_max=st.integers(1, 2**31 - 1), per_symbol=st.booleans(),
       precision=PRECISIONS, seed=st.integers(0, 2**32 - 1))
def test_zipf_round_trip(n, lam, n_max, per_symbol, precision, seed):
    """Indices in [1, n_max] (mostly small, some huge) and outside it."""
    rng = np.random.default_rng(seed)
    symbols = np.minimum(rng.zipf(1.5, n), n_max).astype(np.int64)
    symbols[::11] = rng.integers(-5, 2**31 - 1, len(symbols[::11]))
    lams = lam * rng.uniform(0.5, 2, n) if per_symbol else lam
    _round_trip([("zipf", symbols, lams, n_max)], precision=precision)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(low=INT32, width=st.integers(0, 2**32 - 1), n=st.integers(0, 200), precision=PRECISIONS,
       seed=st.integers(0, 2**32 - 1))
def test_uniform_round_trip(low, width, n, precision, seed):
    """Ranges from one value to the whole int32 line, per symbol or shared."""
    high = min(low + width, 2**31 - 1)
    rng = np.random.default_rng(seed)
    symbols = rng.integers(low, high, n, endpoint=True)
    symbols[::9] = rng.integers(-(2**31), 2**31, len(symbols[::9]))
    lows = np.full(n, low, np.int64)
    _round_trip([("uniform", symbols, low, high), ("uniform", symbols, lows, high)], precision=precision)


def test_mixed_calls_every_family_and_empty_arrays():
    rng = np.random.default_rng(1)
    n = 5000
    mu, sigma = rng.uniform(-5, 5, n), rng.uniform(0.3, 4, n)
    g = np.round(rng.normal(mu, sigma)).astype(np.int32)
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    calls = [
        ("gaussian", g, mu, sigma),
        ("gaussian", np.zeros(0, np.int32), [], []),
        ("categorical", rng.integers(0, 4, (7, 9)), probs),
        ("logistic", g, mu, 2.0),
        ("laplace", g[:10], 0.5, 1.5),
        ("zipf", rng.zipf(2.0, 300), 2.0, 10**6),
        ("uniform", rng.integers(-9, 10, 100), -9, 9),
        ("logistic_dithered", g, 0.0, 1.0, 0.75, rng.uniform(-0.5, 0.5, n)),
        ("gaussian", g, mu, sigma),
    ]
    _round_trip(calls)
    _round_trip(calls, lanes=1, segment_size=2**12)
    assert rans.Decoder(rans.Encoder().finish()).num_symbols == 0


def test_multidimensional_arrays_broadcasting_and_dtypes():
    rng = np.random.default_rng(2)
    mu = rng.uniform(-3, 3, (6, 1, 5))  # broadcasts against (6, 4, 5)
    sigma = np.float32(1.5)
    x = np.round(mu + rng.normal(size=(6, 4, 5))).astype(np.int16)
    enc = rans.Encoder()
    enc.encode_gaussian(x, mu, sigma)
    enc.encode_gaussian(x.astype(np.uint8) % 7, mu.astype(np.float32), np.full((6, 4, 5), 2, np.int64))
    dec = rans.Decoder(enc.finish())
    np.testing.assert_array_equal(dec.decode_gaussian(mu, sigma, shape=(6, 4, 5)), x)
    out = dec.decode_gaussian(mu.astype(np.float32), np.full((6, 4, 5), 2, np.int64))
    np.testing.assert_array_equal(out, x.astype(np.uint8) % 7)


def test_float32_and_float64_parameters_are_the_same_model():
    """float32 inputs widen exactly: same stream as their float64 values."""
    rng = np.random.default_rng(3)
    mu = rng.uniform(-5, 5, 1000).astype(np.float32)
    sigma = rng.uniform(0.2, 5, 1000).astype(np.float32)
    x = np.round(rng.normal(mu, sigma)).astype(np.int32)
    streams = []
    for m, s in ((mu, sigma), (mu.astype(np.float64), sigma.astype(np.float64))):
        enc = rans.Encoder()
        enc.encode_gaussian(x, m, s)
        streams.append(enc.finish())
    assert streams[0] == streams[1]


def test_torch_tensors():
    torch = pytest.importorskip("torch")
    mu = torch.linspace(-4, 4, 300, dtype=torch.float64)
    x = torch.round(mu + torch.sin(torch.arange(300.0))).to(torch.int32)
    enc = rans.Encoder()
    enc.encode_laplace(x, mu, torch.tensor(0.7))
    got = rans.Decoder(enc.finish()).decode_laplace(mu, torch.tensor(0.7))
    np.testing.assert_array_equal(got, x.numpy())


def test_non_contiguous_inputs():
    rng = np.random.default_rng(4)
    mu = rng.uniform(-5, 5, (40, 30))[:, ::3]
    x = np.round(mu).astype(np.int32)
    enc = rans.Encoder()
    enc.encode_gaussian(x.T, mu.T, 1.0)
    np.testing.assert_array_equal(rans.Decoder(enc.finish()).decode_gaussian(mu.T, 1.0), x.T)


def test_decoder_properties_and_reading_past_the_end():
    enc = rans.Encoder(precision=20, lanes=4, segment_size=2**14)
    enc.encode_uniform(np.arange(10), 0, 9)
    assert enc.num_symbols == 10
    dec = rans.Decoder(bytearray(enc.finish()))
    assert (dec.num_symbols, dec.precision, dec.lanes, dec.segment_size) == (10, 20, 4, 2**14)
    np.testing.assert_array_equal(dec.decode_uniform(0, 9, shape=4), np.arange(4))
    assert dec.remaining == 6
    with pytest.raises(chansim.FormatError, match="remain"):
        dec.decode_uniform(0, 9, shape=7)
    np.testing.assert_array_equal(dec.decode_uniform(0, 9, shape=6), np.arange(4, 10))


def test_finished_encoder_refuses_more():
    enc = rans.Encoder()
    enc.finish()
    with pytest.raises(RuntimeError):
        enc.encode_uniform([1], 0, 1)


# ---- bad arguments -----------------------------------------------------------


BAD_CALLS = [
    ("means must be finite", "gaussian", [1, 2], [0.0, np.nan], 1.0),
    ("means must be finite", "logistic", [1], np.inf, 1.0),
    ("scales must be finite and > 0", "gaussian", [1, 2], 0.0, [1.0, 0.0]),
    ("scales must be finite and > 0", "laplace", [1], 0.0, -1.0),
    ("scales must be finite and > 0", "gaussian", [1], 0.0, np.inf),
    ("does not broadcast", "gaussian", [1, 2, 3], [0.0, 1.0], 1.0),
    ("symbols must be integers", "gaussian", [1.5], 0.0, 1.0),
    ("symbols must fit in int32", "gaussian", [2**40], 0.0, 1.0),
    ("must be real numbers", "gaussian", [1], "a", 1.0),
    ("width must be finite and > 0", "gaussian_dithered", [1], 0.0, 1.0, 0.0, 0.0),
    ("offset must be finite", "logistic_dithered", [1], 0.0, 1.0, 1.0, np.nan),
    ("not finite and positive", "gaussian_dithered", [1], 1e300, 1.0, 1e-300, 0.0),
    ("width must be finite and > 0", "laplace_uniform", [1], 0.0, 1.0, -1.0, 0.0),
    ("probabilities must be finite and >= 0", "categorical", [0], [0.5, -0.1, 0.6]),
    ("probabilities must be finite and >= 0", "categorical", [0], [0.5, np.nan, 0.5]),
    ("must sum to 1", "categorical", [0], [0.5, 0.6]),
    ("must sum to 1", "categorical", [0, 1], [[0.5, 0.5], [0.1, 0.1]]),
    ("at least one dimension", "categorical", [0], 1.0),
    ("lam must be in", "zipf", [1], 0.0, 10),
    ("lam must be in", "zipf", [1, 2], [1.5, np.nan], 10),
    ("n_max", "zipf", [1], 1.5, 0),
    ("n_max", "zipf", [1], 1.5, 2**31),
    ("low > high", "uniform", [1], 5, 4),
    ("low must be integers", "uniform", [1], 0.5, 4),
    ("high must fit in int32", "uniform", [1], 0, 2**31),
]


@pytest.mark.parametrize("call", BAD_CALLS, ids=[f"{c[1]}:{c[0]}" for c in BAD_CALLS])
def test_bad_arguments_raise_value_error_and_leave_encoder_usable(call):
    match, family, *args = call
    enc = rans.Encoder()
    enc.encode_uniform([3], 0, 5)
    with pytest.raises(ValueError, match=match):
        getattr(enc, f"encode_{family}")(*args)
    assert enc.num_symbols == 1
    assert rans.Decoder(enc.finish()).decode_uniform(0, 5, shape=1).tolist() == [3]


def test_bad_decoder_arguments():
    enc = rans.Encoder()
    enc.encode_gaussian(np.arange(4), 0.0, 1.0)
    dec = rans.Decoder(enc.finish())
    with pytest.raises(ValueError, match="scales must be finite and > 0"):
        dec.decode_gaussian(0.0, [1.0, 1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="shared probability table needs the shape"):
        dec.decode_categorical([0.5, 0.5])
    assert dec.remaining == 4  # nothing consumed by the failed calls
    np.testing.assert_array_equal(dec.decode_gaussian(0.0, 1.0, shape=4), np.arange(4))
    with pytest.raises(ValueError, match="bytes-like"):
        rans.Decoder("not bytes")


@pytest.mark.parametrize("kwargs,match", [
    ({"precision": 15}, "precision"), ({"precision": 31}, "precision"), ({"lanes": 0}, "lanes"),
    ({"lanes": 33}, "lanes"), ({"segment_size": 3000}, "power of two"), ({"segment_size": 2**11}, "segment size"),
    ({"precision": 24.0}, "integers"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rans.Encoder(**kwargs)


def test_categorical_table_larger_than_precision_allows():
    with pytest.raises(ValueError, match="exceed"):
        rans.Encoder(precision=16).encode_categorical([0], np.full(2**15 + 1, 1.0 / (2**15 + 1)))


def test_shared_table_is_checked_even_without_symbols():
    with pytest.raises(ValueError, match="probabilities"):
        rans.Encoder().encode_categorical(np.zeros(0, np.int32), [0.5, np.nan, 0.5])
    with pytest.raises(ValueError, match="probabilities"):
        rans.Decoder(rans.Encoder().finish()).decode_categorical([0.5, -0.5, 1.0], shape=0)
