"""chansim.diffusion.temperature.temperature_search against SciPy's root of monotone laws."""

import pytest

from chansim.diffusion.temperature import TEMPERATURE_MAX, TEMPERATURE_MIN, temperature_search

brentq = pytest.importorskip("scipy.optimize").brentq


LAWS = [
    lambda t: 0.3 + 1.7 * t ** 3,          # root (0.7 / 1.7)^(1/3) ≈ 0.744: the τ^(-½) guess lands above it
    lambda t: 0.2 + 3.0 * t ** 1.5,        # root ≈ 0.400: the guess (≈ 0.56) lands above it
    lambda t: 0.1 + 1.1 * t ** 8,          # steep: root ≈ 0.987, the guess lands far below it
    lambda t: 0.05 + 0.6 * t ** 2,         # under-dispersed: root ≈ 1.258 (> 1)
    lambda t: 0.1 + 0.5 * t ** 3,          # root ≈ 1.216, the guess (≈ 1.29) lands above it
]


@pytest.mark.parametrize("law", LAWS)
def test_temperature_search_finds_the_root_of_a_monotone_ratio(law):
    """Against the root of ratio(τ) = 1 found by SciPy's brentq for increasing laws: within the tolerance,
    in at most the allowed number of evaluations, each τ in the admitted range."""
    calls = []
    tau, r, tried = temperature_search(lambda t: calls.append(t) or law(t), tolerance=0.03, max_evals=6)
    root = brentq(lambda t: law(t) - 1.0, 1e-6, TEMPERATURE_MAX)
    assert len(calls) == len(tried) <= 6 and all(0 < t <= TEMPERATURE_MAX for t in calls)
    assert abs(r - 1.0) <= 0.03 and r == law(tau)
    assert abs(tau - root) < 0.05


def test_temperature_search_keeps_one_within_the_tolerance_and_stops_at_the_range():
    for top in (0.971, 1.0, 1.029):
        tau, r, tried = temperature_search(lambda t: top * t, tolerance=0.03)
        assert tau == 1.0 and r == top and len(tried) == 1
    # A root beyond the admitted range: the nearest end, without spending every evaluation on it.
    tau, r, tried = temperature_search(lambda t: 0.3 * t, tolerance=0.03, max_evals=6)
    assert tau == TEMPERATURE_MAX and r == 0.3 * TEMPERATURE_MAX and len(tried) < 6


def test_temperature_search_from_another_start_on_a_grid():
    """``start`` is tried first and kept within the tolerance; with ``snap`` every τ tried is a grid
    point (a file's 1/128 steps), the answer among them, and a root between two grid points ends the
    search when a guess repeats instead of spending every evaluation."""
    grid = lambda t: round(t * 128) / 128            # noqa: E731
    law = lambda t: 0.2 + 0.5 * t ** 2               # noqa: E731  root √1.6 ≈ 1.2649
    tau, r, tried = temperature_search(law, tolerance=0.0001, max_evals=12, start=0.7, snap=grid)
    assert tried[0][0] == grid(0.7) and all(t == grid(t) for t, _ in tried)
    assert abs(tau - brentq(lambda t: law(t) - 1, 0.1, 2)) <= 1 / 128 and r == law(tau)
    assert len(tried) < 12 and len({t for t, _ in tried}) == len(tried)
    tau, r, tried = temperature_search(law, tolerance=0.03, start=1.27)
    assert tau == 1.27 and len(tried) == 1
    tau, r, tried = temperature_search(lambda t: 50 * t, tolerance=0.03, start=1.0)
    assert tau == TEMPERATURE_MIN and len(tried) < 6


@pytest.mark.parametrize("law", LAWS + [lambda t: max(0.9 * t ** 2, 0.35 + 0.5 * t ** 4)])   # a kink near τ = 0.9
def test_temperature_search_within_the_band(law):
    """accept="within" finds SciPy's root as "nearest" does — ratio within the tolerance of 1, in a few
    evaluations — also for the maximum of two laws (the form a detail target with a distortion budget
    folded in takes)."""
    tau, r, tried = temperature_search(law, tolerance=0.05, max_evals=6, accept="within")
    root = brentq(lambda t: law(t) - 1.0, 1e-6, TEMPERATURE_MAX)
    assert abs(r - 1.0) <= 0.05 and r == law(tau) and len(tried) <= 6 and abs(tau - root) < 0.05
    assert all(t <= TEMPERATURE_MAX for t, _ in tried)


def test_temperature_search_within_never_returns_a_ratio_over_the_band_when_one_under_it_was_tried():
    """On a coarse grid a steep ratio jumps over the band: 0.8 at τ = 1, 0.8 · 1.125^2.7 ≈ 1.10 at the next
    guess (1/0.8)^½ ≈ 1.118 → 1.125. "nearest" returns 1.10, "within" the 0.8 under the band's upper
    edge; when every ratio tried is over it, the smallest."""
    grid = lambda t: round(t * 8) / 8                 # noqa: E731
    law = lambda t: 0.8 * t ** 2.7                    # noqa: E731
    got = {mode: temperature_search(law, tolerance=0.05, max_evals=2, snap=grid, accept=mode)
           for mode in ("nearest", "within")}
    assert [t for t, _ in got["within"][2]] == [1.0, 1.125] and 1.09 < law(1.125) < 1.11
    assert got["nearest"][:2] == (1.125, law(1.125)) and got["within"][:2] == (1.0, 0.8)
    tau, r, tried = temperature_search(lambda t: 50 * t, tolerance=0.03, accept="within")
    assert tau == TEMPERATURE_MIN and r == 50 * TEMPERATURE_MIN and r == min(q for _, q in tried)
    for r0 in (0.951, 1.0, 1.049):           # the start is kept within the band on either side
        assert len(temperature_search(lambda t: r0 * t, tolerance=0.05, accept="within")[2]) == 1
    with pytest.raises(ValueError, match="accept"):
        temperature_search(lambda t: t, accept="above")


@pytest.mark.parametrize("law, start, draws", [
    # kodim04 at quality 4 (fitted to the shipped decoder's draws): HF 0.79·τ^10 over a cost branch
    (lambda t: max(0.79 * t ** 10, 1.05 * (0.5 + 0.33 * t ** 4)), 1.0432, 5),
    # kodim07 at quality 2: HF 2.107·τ^7.3 from a start far above the band, over a flat cost branch
    (lambda t: max(2.107 * t ** 7.3, 1.05 * (0.5 + 0.452 * t ** 5)), 1.0159, 6),
])
def test_temperature_search_on_steep_laws_of_a_decoder(law, start, draws):
    """The ratios a generative decoder's draws give are near power laws of τ, steep (τ⁷–τ¹⁰) where the
    detail term takes over: bracketing steps interpolate log ratio against log τ, and land in the band
    on the file's 1/128 grid within the codec's budget of draws (a straight line through two points
    of τ¹⁰ lands at 0.92 after five)."""
    grid = lambda t: round(t * 128) / 128            # noqa: E731
    tau, r, tried = temperature_search(law, tolerance=0.05, max_evals=draws, tau_max=255 / 128,
                                       start=grid(start), snap=grid, accept="within")
    root = brentq(lambda t: law(t) - 1.0, 0.5, 1.5)
    assert abs(r - 1.0) <= 0.05 and r == law(tau) and len(tried) <= draws
    assert abs(tau - root) <= 2 / 128
