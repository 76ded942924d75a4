"""Statistical checks of a channel simulator: :func:`check_exact`, :func:`check_code_length`,
:func:`check_bias`.

The simulator is given as two callables (bind everything else, e.g. with ``functools.partial``
or a closure):

- ``encode(seed) -> (sample, message)`` or ``(sample, message, bits)``: one run of the sender
  with the common-randomness seed ``seed`` (an int < 2**64). ``sample`` is a NumPy array (or a
  scalar) with the shape of q; ``message`` is ``bytes``; the optional ``bits`` is the code length
  to judge (default ``8 * len(message)``).
- ``decode(message, seed) -> sample``: the receiver; it must return the encoder's sample bit for
  bit (same dtype, shape and bytes).

With ``batched=True`` one call sends ``m`` independent draws at once: ``sample`` has shape
``(m, *q_shape)`` (e.g. ``m`` one-dimensional channels in one vectorised message), and ``bits``,
if given, is a scalar for the whole message or an array of ``m`` per-draw lengths.

The checks call ``encode`` with seeds ``seed, seed + 1, …`` until ``n`` draws are collected, so
they are deterministic: the same simulator gives the same verdict on every run (no CI flakiness);
change ``seed`` to draw a different sample. Each returns a result object and raises
:class:`CheckFailed` (an ``AssertionError``) with a readable message when the null hypothesis
(the simulator is correct) is rejected at level ``alpha``; pass ``raise_on_failure=False`` to get
the result either way.

q and p are laws in the sense of :mod:`chansim.testing._laws`: ``Gaussian(mean, std)`` / a
``(mean, std)`` tuple for diagonal Gaussians, ``Uniform(low, high)`` / ``Uniform.around(center,
width)`` for products of uniforms (dithered quantizers), or a frozen SciPy distribution
(anything with a vectorised ``cdf``) for other product laws. SciPy is required (``pip install "chansim[testing]"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._laws import Gaussian, as_law
from ._laws import kl_bits as _kl_bits

__all__ = ["BiasResult", "CheckFailed", "CheckResult", "CodeLengthResult", "ExactResult", "check_bias",
           "check_code_length", "check_exact"]


def _scipy():
    try:
        from scipy import special, stats
    except ImportError:  # pragma: no cover - exercised only without SciPy
        raise ImportError('chansim.testing checks need SciPy: pip install "chansim[testing]"') from None
    return special, stats


@dataclass
class CheckResult:
    """What every check returns.

    ``statistic`` and ``p_value`` are those of the decisive test (for a family of tests the
    worst one, its p-value Bonferroni-adjusted); ``n`` the number of draws (or inputs);
    ``alpha`` the false-alarm level; ``passed`` the verdict; ``message`` the text of the
    ``AssertionError`` raised on failure (a summary when passed).
    """

    check: str
    passed: bool
    statistic: float
    p_value: float
    n: int
    alpha: float
    message: str

    def __str__(self):
        return self.message


class CheckFailed(AssertionError):
    """Raised by a check that rejects; ``.result`` holds its result object."""

    def __init__(self, result):
        super().__init__(result.message)
        self.result = result


def _finish(result, raise_on_failure):
    if not result.passed and raise_on_failure:
        raise CheckFailed(result)
    return result


@dataclass
class ExactResult(CheckResult):
    """:func:`check_exact`: ``ks_pvalues`` per coordinate, ``chi2_pvalues`` per projection,
    ``given_pvalues`` (covariate name → p-value, unadjusted) and ``given_statistics`` (name →
    (χ², degrees of freedom)) for the conditional tests of ``given=``, ``worst`` names the
    decisive test, ``mismatches`` lists the seeds whose decoded sample differed from the
    encoder's, ``samples`` the (n, d) draws."""

    dim: int = 0
    ks_pvalues: np.ndarray = field(default=None, repr=False)
    chi2_pvalues: np.ndarray = field(default=None, repr=False)
    given_pvalues: dict = field(default_factory=dict)
    given_statistics: dict = field(default_factory=dict)
    worst: str = ""
    mismatches: list = field(default_factory=list)
    samples: np.ndarray = field(default=None, repr=False)


@dataclass
class CodeLengthResult(CheckResult):
    """:func:`check_code_length`: mean bits per draw with its standard error and the one-sided
    ``1 − alpha`` lower confidence limit, against ``bound`` (= KL + log₂(KL + 1) + c by default)."""

    mean_bits: float = 0.0
    se: float = 0.0
    lower_confidence: float = 0.0
    bound: float = 0.0
    kl_bits: float = 0.0


@dataclass
class BiasResult(CheckResult):
    """:func:`check_bias`: the shift fraction (mean of the sample along the shift μq − μp, as a
    fraction of the shift; 1 for an exact simulator) and the variance along the shift (in p's
    units), each with its standard error and the expectation it was compared with."""

    shift_fraction: float = 0.0
    shift_se: float = 0.0
    expected_shift: float = 0.0
    variance: float = 0.0
    variance_se: float = 0.0
    expected_variance: float = 0.0


def _collect(encode, n, seed, batched, decode=None, law=None, given=None):
    """Run the encoder until n draws: (samples (n, *shape), per-draw bits, mismatching seeds, PIT (n, d) or None,
    covariates {name: (n, d)})."""
    given = given or {}
    xs, bits, mismatches, pits = [], [], [], []
    covs = {name: [] for name in given}
    got, call = 0, 0
    while got < n:
        s = (int(seed) + call) % 2**64
        call += 1
        out = encode(s)
        if not isinstance(out, tuple) or len(out) not in (2, 3):
            raise TypeError("encode(seed) must return (sample, message) or (sample, message, bits)")
        x = np.asarray(out[0])
        msg = out[1]
        if decode is not None:
            y = np.asarray(decode(msg, s))
            if y.dtype != x.dtype or y.shape != x.shape or y.tobytes() != x.tobytes():
                mismatches.append(s)
        m = x.shape[0] if batched else 1
        if batched and x.ndim == 0:
            raise ValueError("batched=True needs samples of shape (m, *q_shape)")
        xs.append(x if batched else x[None])
        if law is not None:  # per call, so q's parameters may have the batch's shape
            pits.append(np.asarray(law.cdf(x.astype(np.float64)), np.float64).reshape(m, -1))
        for name, g in given.items():  # broadcast like q's parameters
            try:
                covs[name].append(np.broadcast_to(g, x.shape).reshape(m, -1))
            except ValueError:
                raise ValueError(f"given[{name!r}] of shape {g.shape} does not broadcast against a call's sample of "
                                 f"shape {x.shape}") from None
        if len(out) == 3:
            b = np.asarray(out[2], np.float64)
            b = np.full(m, float(b) / m) if b.ndim == 0 else b.reshape(m)
        else:
            b = np.full(m, 8.0 * len(msg) / m)
        bits.append(b)
        got += m
    x = np.concatenate(xs)[:n]
    pit = np.concatenate(pits)[:n] if law is not None else None
    covs = {name: np.concatenate(c)[:n] for name, c in covs.items()}
    return x, np.concatenate(bits)[:n], mismatches, pit, covs


def _fmt(p):
    return f"{p:.3g}"


def _pit_bins(size):
    """Equiprobable bins for a χ² of ``size`` PIT values: ⌊2·size^0.4⌋ clipped to [5, 50]."""
    return int(min(50, max(5, math.floor(2 * size**0.4))))


def _as_covariates(given):
    """``given=`` as {name: float64 array}."""
    if given is None:
        return {}
    items = given.items() if isinstance(given, dict) else [("the covariate", given)]
    out = {}
    for name, g in items:
        g = np.asarray(g, dtype=np.float64)
        if not np.all(np.isfinite(g)):
            raise ValueError(f"given[{name!r}] has non-finite values")
        out[str(name)] = g
    return out


def _given_chi2(u, g, groups, stats):
    """Pearson χ² of the PIT values ``u`` within ``groups`` equal-count bins of the covariate ``g``
    (ranks, ties in draw order): (statistic, degrees of freedom, p-value, PIT bins)."""
    size = u.size
    per = size / groups
    if per < 10:
        raise ValueError(f"given= needs at least 10 values per covariate bin: {size} values in {groups} bins")
    k = min(_pit_bins(per), max(2, int(per // 5)))  # at least 5 expected per cell
    cells = np.minimum((u * k).astype(np.int64), k - 1)
    stat = 0.0
    for part in np.array_split(np.argsort(g, kind="stable"), groups):
        counts = np.bincount(cells[part], minlength=k)
        e = part.size / k
        stat += float(np.sum((counts - e) ** 2) / e)
    df = groups * (k - 1)
    return stat, df, float(stats.chi2.sf(stat, df)), k


def check_exact(encode, decode, q, p=None, *, n=2000, alpha=1e-3, seed=0, batched=False, projections=None,
                bins=None, given=None, given_bins=5, raise_on_failure=True) -> ExactResult:
    """Check that a simulator is exact: its samples follow q, and the decoder reproduces them.

    ``encode(seed) -> (sample, message)`` and ``decode(message, seed) -> sample`` as in the
    module docstring (``decode=None`` skips the bit-for-bit comparison); ``q`` the target law,
    ``p`` the prior (unused by the tests; kept for symmetry with the other checks). With
    ``batched=True``, q's parameters may have the batch's shape ``(m, *q_shape)`` when every call
    sends ``m`` draws with different targets (e.g. DQ of ``m`` different inputs): the tests use
    only the probability-integral transform (PIT) u = F(x), i.i.d. U(0, 1) under the null either
    way — and independent of anything fixed before the draw, which ``given`` tests.

    Tests, on ``n`` draws (default 2,000) at family-wise level ``alpha`` (default 1e-3):

    - the decoded sample equals the encoder's bit for bit for every draw (no tolerance);
    - one-sample Kolmogorov–Smirnov of the PIT F_j(x_j) against U(0, 1) for every coordinate j
      (the marginals);
    - the joint law: z = Φ⁻¹(F(x)) is N(0, I) under q; Pearson's χ² of ``projections`` random unit
      projections of z (default 1 for d = 1, else 3; directions fixed by ``seed``) on ``bins``
      equiprobable bins (default ⌊2 n^0.4⌋ clipped to [5, 50]);
    - the law given a covariate, for each array of ``given`` (one array, or a dict name → array,
      each broadcasting against every call's sample exactly as q's parameters do; values fixed
      before the draw, e.g. the input of a quantizer or its position in the quantization cell,
      never a function of the sample): the n·d PIT values are split into ``given_bins``
      (default 5) equal-count bins of the covariate's rank, and Pearson's χ² of the PIT on
      K equiprobable bins (K = ⌊2 (n·d/given_bins)^0.4⌋ clipped to [5, 50], at most one bin per
      5 expected values) is summed over the covariate bins: given_bins·(K − 1) degrees of freedom. It
      catches a simulator whose marginal law is right but whose error depends on the input —
      e.g. plain rounding of inputs spread over many cells, whose error is U(−½, ½) marginally
      but a deterministic function of the input's position in its cell;
    - Bonferroni over the d + projections + len(given) tests: each p-value against
      alpha / (d + projections + len(given)).

    ``result.p_value`` is the smallest p-value times the number of tests (capped at 1).
    Detection (measured at the defaults over 5 seeds, tests/test_testing_power.py): truncated PFR
    at D = 2.9 bits with K = 8 candidates presented as exact 5/5, an encoder's dither off by 0.1
    step 5/5, a decoder off by one ulp in one message of four 5/5; false alarms on the exact PFR
    and the right DQ beside them 0/5. With ``given`` (n = 2,000, d = 1, the input's position in
    its cell): plain rounding of inputs spread uniformly over cells (marginally exact) 5/5, a
    dither biased by 0.15·(position − ½) 5/5, and the right DQ 0/5.

    >>> import numpy as np
    >>> from chansim import dq
    >>> from chansim.testing import Uniform, check_exact
    >>> x, step = np.float64(0.3), 0.5
    >>> def encode(seed):
    ...     k = dq.quantize([x], step, seed, 1)
    ...     return dq.dequantize(k, step, seed, 1, dtype=np.float64)[0], k.tobytes()
    >>> def decode(message, seed):
    ...     return dq.dequantize(np.frombuffer(message, np.int32), step, seed, 1, dtype=np.float64)[0]
    >>> check_exact(encode, decode, q=Uniform.around(x, step), n=500).passed
    True

    One vectorised call of 2,000 channels with different inputs, and the error's independence of
    the input's position in its quantization cell; plain rounding fails that test only:

    >>> xs = np.random.default_rng(1).uniform(-4, 4, 2000)
    >>> def rounding(seed):
    ...     k = np.rint(xs / step).astype(np.int32)
    ...     return step * k, k.tobytes()
    >>> r = check_exact(rounding, None, Uniform.around(xs, step), n=2000, batched=True,
    ...                 given={"position in the cell": xs / step % 1.0}, raise_on_failure=False)
    >>> r.passed, bool(r.ks_pvalues[0] > 0.01), r.worst
    (False, True, "chi-squared given 'position in the cell' (5 × 21 bins)")
    """
    special, stats = _scipy()
    law = as_law(q)
    covariates = _as_covariates(given)
    if covariates and int(given_bins) < 2:
        raise ValueError("given_bins must be at least 2")
    x, _, mismatches, u, covs = _collect(encode, n, seed, batched, decode, law, covariates)
    shape = x.shape[1:]
    d = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if u.shape[1] != d:
        raise ValueError(f"q's cdf gave {u.shape[1]} coordinates per draw, the samples have {d}")
    if projections is None:
        projections = 1 if d == 1 else 3
    if bins is None:
        bins = _pit_bins(n)
    results = []  # (name, statistic, p-value), in a fixed order: ties go to the first
    ks = np.empty(d)
    for j in range(d):
        r = stats.kstest(u[:, j], "uniform")
        ks[j] = r.pvalue
        results.append((f"KS of coordinate {j}", float(r.statistic), float(r.pvalue)))
    z = special.ndtri(np.clip(u, 1e-300, 1 - 2**-53))
    rng = np.random.default_rng(int(seed) % 2**63)
    w = rng.standard_normal((projections, d))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    proj = z @ w.T
    edges = special.ndtri(np.linspace(0, 1, bins + 1)[1:-1])
    chi = np.empty(projections)
    for i in range(projections):
        counts = np.bincount(np.searchsorted(edges, proj[:, i]), minlength=bins)
        e = n / bins
        stat = float(np.sum((counts - e) ** 2) / e)
        chi[i] = float(stats.chi2.sf(stat, bins - 1))
        results.append((f"chi-squared of projection {i} ({bins} bins)", stat, chi[i]))
    given_p, given_stat = {}, {}
    for name, g in covs.items():
        stat, df, pv, k = _given_chi2(u.ravel(), g.ravel(), int(given_bins), stats)
        given_p[name], given_stat[name] = pv, (stat, df)
        results.append((f"chi-squared given {name!r} ({int(given_bins)} × {k} bins)", stat, pv))
    tests = len(results)
    worst, stat, pmin = min(results, key=lambda t: t[2])
    p_adj = min(1.0, pmin * tests)
    law_ok = p_adj > alpha
    passed = law_ok and not mismatches
    lines = []
    if not law_ok:
        lines.append(f"check_exact: the samples do not follow q: {worst}: statistic = {stat:.4g}, "
                     f"p = {_fmt(pmin)} (Bonferroni-adjusted over {tests} tests: {_fmt(p_adj)}) <= alpha = {alpha:g}, "
                     f"n = {n} draws of dimension {d}")
    if mismatches:
        lines.append(f"check_exact: the decoder's sample differs from the encoder's (bit for bit) for "
                     f"{len(mismatches)} of the calls, seeds {mismatches[:5]}{' ...' if len(mismatches) > 5 else ''}")
    if passed:
        lines.append(f"check_exact passed: worst {worst}: statistic = {stat:.4g}, adjusted p = {_fmt(p_adj)} > "
                     f"alpha = {alpha:g}, n = {n}, d = {d}; decoder bit-identical")
    res = ExactResult("check_exact", passed, stat, p_adj, n, alpha, "\n".join(lines), dim=d, ks_pvalues=ks,
                      chi2_pvalues=chi, given_pvalues=given_p, given_statistics=given_stat, worst=worst,
                      mismatches=mismatches, samples=x)
    return _finish(res, raise_on_failure)


def check_code_length(encode, q, p, *, n=500, alpha=1e-3, c=4.0, bound=None, kl_bits=None, overhead_bits=0.0,
                      seed=0, batched=False, raise_on_failure=True) -> CodeLengthResult:
    """Check the mean code length per draw against KL + log₂(KL + 1) + c bits.

    KL = KL(q‖p) in bits for one draw (closed form for Gaussian laws, else pass ``kl_bits``);
    ``c`` defaults to 4, the Li–El Gamal constant for a Zipf-coded PFR index (papers.md §3:
    H ≤ I + log₂(I + 1) + 4); ``bound`` replaces the whole formula. A message's length is
    ``8 * len(message)`` unless ``encode`` returns ``bits`` as a third element; ``overhead_bits``
    (per message, e.g. a fixed header and checksum) is subtracted first.

    c = 4 is for the index code alone: a framing adds its own cost. chansim.pfr's compact
    framing with one chunk per message (a header byte, then an Elias-γ index padded to whole
    bytes) holds E[bits] ≤ 2·KL + 19.06 instead (docs/format.md §5.3; pass that as ``bound``,
    or c = KL − log₂(KL + 1) + 19.06): at KL = 4.97 bits it measures 20.94 ± 0.10 bits, above
    the c = 4 bound of 11.54 and below its own of 29.0.

    One-sided test of H₀: E[bits] ≤ bound with the normal approximation to the mean of ``n``
    draws (default 500): t = (mean − bound)/se, p = P(Z ≥ t); fails when p ≤ ``alpha``
    (default 1e-3), i.e. when the ``1 − alpha`` lower confidence limit of the mean exceeds the
    bound. Detection (tests/test_testing_power.py): PFR indices sent as 32-bit integers at
    D ≈ 1 bit: 5/5 seeds.

    >>> import numpy as np
    >>> from chansim import pfr
    >>> from chansim.testing import Gaussian, check_code_length
    >>> q, p = Gaussian(2.5, 0.5), Gaussian(0.0, 1.0)
    >>> def encode(seed):   # 200 one-coordinate chunks in one message; 25 bytes of envelope at most
    ...     x, data = pfr.encode_gaussian([2.5] * 200, 0.5, 0.0, 1.0, seed, 3, chunk_bits=8.0)
    ...     return x, data, 8 * len(data) - 200
    >>> r = check_code_length(encode, q, p, n=400, batched=True)
    >>> r.passed, round(r.kl_bits, 2), round(r.bound, 2), r.mean_bits < 8
    (True, 4.97, 11.54, True)
    """
    _, stats = _scipy()
    _, bits, _, _, _ = _collect(encode, n, seed, batched)
    kl = float(kl_bits) if kl_bits is not None else _kl_bits(q, p)
    lim = float(bound) if bound is not None else kl + math.log2(kl + 1.0) + c
    if overhead_bits:
        if batched:
            raise ValueError("with batched=True return per-draw bits from encode instead of overhead_bits")
        bits = bits - float(overhead_bits)
    mean = float(bits.mean())
    se = float(bits.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    zq = float(stats.norm.isf(alpha))
    lower = mean - zq * se
    if se > 0:
        t = (mean - lim) / se
        pval = float(stats.norm.sf(t))
    else:
        t = math.inf if mean > lim else -math.inf
        pval = 0.0 if mean > lim else 1.0
    passed = pval > alpha
    head = "check_code_length passed" if passed else "check_code_length: the mean code length exceeds the bound"
    msg = (f"{head}: mean = {mean:.4g} bits per draw (se {se:.3g}; one-sided {1 - alpha:g} lower limit "
           f"{lower:.4g}) against bound = {lim:.4g} bits (KL = {kl:.4g} bits"
           + (f", c = {c:g}" if bound is None else ", explicit bound") +
           f"): t = {t:.3g}, p = {_fmt(pval)}, alpha = {alpha:g}, n = {n}")
    res = CodeLengthResult("check_code_length", passed, float(t), pval, n, alpha, msg, mean_bits=mean, se=se,
                           lower_confidence=lower, bound=lim, kl_bits=kl)
    return _finish(res, raise_on_failure)


def check_bias(encode, q, p, *, expected_shift=1.0, expected_variance=None, tol_shift=0.0, tol_variance=0.0,
               n=2000, alpha=1e-3, seed=0, batched=False, raise_on_failure=True) -> BiasResult:
    """Check the two moments a budgeted (truncated) scheme gets wrong, along the shift.

    With ε = (x − μp)/σp (p's standard units) and m = (μq − μp)/σp (diagonal Gaussians q, p;
    m ≠ 0), the sample's component along the shift is a = ε·m/‖m‖. Measured on ``n`` draws
    (default 2,000):

    - the shift fraction mean(a)/‖m‖ — 1 for an exact simulator, e.g. 0.976 for truncated PFR at
      D = 8 bits with K = 2^16 candidates, 0.862 at D = 14 (papers.md §3);
    - the variance of a — that of q along m for an exact simulator (the default expectation,
      Σ m̂_j² σq_j²/σp_j²), e.g. 0.83 and 0.48 for those budgeted cases.

    Each is compared with its expectation by a two-sided z-test (standard errors: sd/√n for
    the mean, √((μ₄ − v²)/n) for the variance), after allowing an absolute tolerance
    (``tol_shift``, ``tol_variance``; use them when the expectations are themselves estimates);
    Bonferroni over the two, family-wise level ``alpha`` (default 1e-3). Detection
    (tests/test_testing_power.py): truncated PFR at D = 8 bits, K = 2^12, checked as exact: 5/5.

    >>> from chansim import pfr
    >>> from chansim.testing import Gaussian, check_bias
    >>> def encode(seed):   # 400 one-dimensional channels per message, D = 8 bits, K = 2^16
    ...     return pfr.encode_gaussian([3.3302] * 400, 1.0, 0.0, 1.0, seed, 5, mode="budgeted",
    ...                                chunk_bits=8.01, candidates=2**16)
    >>> r = check_bias(encode, Gaussian(3.3302, 1.0), Gaussian(0.0, 1.0), batched=True, n=800,
    ...                expected_shift=0.976, expected_variance=0.83, tol_shift=0.01, tol_variance=0.05)
    >>> r.passed, 0.95 < r.shift_fraction < 1.0
    (True, True)
    """
    _, stats = _scipy()
    q, p = as_law(q), as_law(p)
    if not (isinstance(q, Gaussian) and isinstance(p, Gaussian)):
        raise TypeError("check_bias needs Gaussian laws q and p (Gaussian(mean, std) or (mean, std))")
    x, _, _, _, _ = _collect(encode, n, seed, batched)
    shape = x.shape[1:]
    mq, sq, mp, sp = [np.broadcast_to(a, shape).astype(np.float64).ravel() for a in (q.mean, q.std, p.mean, p.std)]
    eps = (x.reshape(n, -1).astype(np.float64) - mp) / sp
    m = (mq - mp) / sp
    norm_m = float(np.linalg.norm(m))
    if norm_m == 0:
        raise ValueError("check_bias needs a shift: μq ≠ μp somewhere")
    uhat = m / norm_m
    a = eps @ uhat
    frac = a / norm_m
    shift, shift_se = float(frac.mean()), float(frac.std(ddof=1) / math.sqrt(n))
    var = float(a.var(ddof=1))
    m4 = float(np.mean((a - a.mean()) ** 4))
    var_se = float(math.sqrt(max(m4 - var * var, 0.0) / n))
    if expected_variance is None:
        expected_variance = float(np.sum(uhat**2 * (sq / sp) ** 2))

    def z_of(est, exp, tol, se):
        excess = max(0.0, abs(est - exp) - tol)
        return excess / se if se > 0 else (math.inf if excess > 0 else 0.0)

    z1 = z_of(shift, expected_shift, tol_shift, shift_se)
    z2 = z_of(var, expected_variance, tol_variance, var_se)
    p1, p2 = (float(2 * stats.norm.sf(z)) for z in (z1, z2))
    pmin = min(p1, p2)
    p_adj = min(1.0, 2 * pmin)
    passed = p_adj > alpha
    worst = "shift fraction" if p1 <= p2 else "variance along the shift"
    head = "check_bias passed" if passed else f"check_bias: the {worst} differs from its expectation"
    msg = (f"{head}: shift fraction {shift:.4f} ± {shift_se:.4f} (expected {expected_shift:g}"
           f"{f' ± {tol_shift:g}' if tol_shift else ''}, z = {z1:.3g}); variance along the shift "
           f"{var:.4f} ± {var_se:.4f} (expected {expected_variance:.4g}"
           f"{f' ± {tol_variance:g}' if tol_variance else ''}, z = {z2:.3g}); adjusted p = {_fmt(p_adj)}, "
           f"alpha = {alpha:g}, n = {n}")
    res = BiasResult("check_bias", passed, max(z1, z2), p_adj, n, alpha, msg, shift_fraction=shift,
                     shift_se=shift_se, expected_shift=float(expected_shift), variance=var, variance_se=var_se,
                     expected_variance=float(expected_variance))
    return _finish(res, raise_on_failure)
