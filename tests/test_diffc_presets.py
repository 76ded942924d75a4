"""DiffC channel presets for latents: each preset's documented 1-D law, choose_preset, channel="auto"."""

import math

import numpy as np
import pytest

from chansim import pfr
from chansim.codecs import container
from chansim.codecs.diffc_channel import (PRESET_LAWS, PRESETS, SHIFT_TARGET, choose_preset, estimated_work)

LATENT = ("latent-fast", "latent", "latent-unbiased")
#: Candidates one law check may examine (≈ 0.2–1 s on one core): n = 2^26 / K chunks.
CHECK_CANDIDATES = 2**26


def _law(cs, n, seed):
    """(shift fraction, its SE, whole-message bits per chunk, their SE) of ``n`` 1-D chunks of
    KL = chunk_bits sent with K = 2^(chunk_bits + pad_bits) candidates (the setting of
    benchmarks/pfr_pareto.py). The bits' SE is that of the mean log2 index (≈ 4–4.6 bits of spread
    per chunk at these budgets)."""
    d_bits = cs.chunk_bits
    m = math.sqrt(2 * d_bits * math.log(2))
    mu = np.full(n, m)
    _, data, info = pfr.encode_gaussian(mu, 1.0, 0.0, 1.0, seed, 1 << 20, mode=cs.mode, chunk_bits=d_bits + 1e-6,
                                        candidates=2 ** (d_bits + cs.pad_bits), return_info=True)
    assert info["chunks"] == n
    eps = pfr.candidates_of(pfr.plan(mu, 1.0, 0.0, 1.0, chunk_bits=d_bits + 1e-6), info["indices"], seed,
                            1 << 20).astype(np.float64)
    log_idx = np.log2(info["indices"].astype(np.float64))
    return eps.mean() / m, eps.std() / m / math.sqrt(n), 8 * len(data) / n, log_idx.std() / math.sqrt(n)


def test_every_preset_has_a_measured_law():
    assert set(PRESET_LAWS) == set(PRESETS)
    for name in LATENT:
        law = PRESET_LAWS[name]
        assert law.shift_fraction >= SHIFT_TARGET and law.bits_over_kl <= 1.5, name
    # the pixel default, for comparison: same machinery, 2.1 bits per bit of KL
    assert PRESET_LAWS["unbiased"].bits_over_kl > 2.0


@pytest.mark.parametrize("name", LATENT)
def test_latent_preset_meets_its_documented_law(name):
    """An independent run (another seed, 4–8× fewer chunks) agrees with the documented shift fraction
    within 4 standard errors (of both runs), and spends ≤ 1.5 bits per bit of KL (and the documented
    bits over KL) up to the message's fixed bytes (≈ 24, amortised over the chunks) and 4 SE."""
    cs, law = PRESETS[name], PRESET_LAWS[name]
    d = cs.chunk_bits
    n = CHECK_CANDIDATES // 2 ** (d + cs.pad_bits)
    frac, se, bits, bits_se = _law(cs, n, seed=20261203)
    tol = 4 * math.hypot(se, law.shift_se)
    assert abs(frac - law.shift_fraction) <= tol, (name, n, frac, law.shift_fraction, tol)
    header = 8 * 24 / n
    doc_bits_se = bits_se * math.sqrt(n / law.chunks)  # the documented run's, same spread per chunk
    slack = (header + 4 * math.hypot(bits_se, doc_bits_se)) / d
    assert bits / d <= 1.5 + slack, (name, n, bits, slack)
    assert abs(bits / d - law.bits_over_kl) <= slack, (name, n, bits, law.bits_over_kl, slack)


def _rank(name):
    """Order of choose_preset's preference: meeting the shift target first, then fewer bits over KL;
    below the target, a higher shift fraction."""
    law = PRESET_LAWS[name]
    if law.shift_fraction >= SHIFT_TARGET:
        return (1, -law.bits_over_kl)
    return (0, law.shift_fraction)


@pytest.mark.parametrize("dims", [4608, 16384, 65536, 262144])
def test_choose_preset_fits_the_budget_and_is_monotone(dims):
    cheapest = min(PRESETS, key=lambda n: estimated_work(PRESETS[n], dims))
    budgets = [2.0 ** e for e in np.arange(16, 44, 0.5)]
    picks = [choose_preset(b, dims) for b in budgets]
    for b, p in zip(budgets, picks):
        fits = [n for n in PRESETS if estimated_work(PRESETS[n], dims) <= b]
        if fits:
            assert estimated_work(PRESETS[p], dims) <= b
            assert _rank(p) == max(_rank(n) for n in fits)  # the best that fits
        else:
            assert p == cheapest
    for a, b in zip(picks, picks[1:]):
        assert _rank(b) >= _rank(a)  # a larger budget never gives a worse choice
    # an unlimited budget: the lowest bits over KL at shift ≥ 0.97 among all presets
    best = min((n for n in PRESETS if PRESET_LAWS[n].shift_fraction >= SHIFT_TARGET),
               key=lambda n: PRESET_LAWS[n].bits_over_kl)
    assert picks[-1] == best == "latent"


def test_choose_preset_examples_and_errors():
    # SD-1.5 at 512×512 has 4×64×64 = 16384 latent coordinates
    assert choose_preset(2**30, 16384) == "latent-fast"
    assert choose_preset(2**32, 16384) == "latent"
    assert choose_preset(2**28, 16384) == "unbiased"
    assert choose_preset(1.0, 16384) == "unbiased"  # nothing fits: the cheapest
    assert choose_preset(2**40, 16384, presets=["unbiased", "latent-unbiased"]) == "latent-unbiased"
    assert choose_preset(2**40, 16384, presets=["unbiased", "compact"]) == "unbiased"  # compact misses 0.97
    assert estimated_work(PRESETS["latent"], 16384) == 16384 * 2.0 ** (8 + 1 + 9)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            choose_preset(bad, 100)
    with pytest.raises(ValueError):
        choose_preset(2**30, 0)
    with pytest.raises(ValueError):
        choose_preset(2**30, 100, presets=["nope"])


from images import disc_image as _image  # noqa: E402


def test_auto_round_trips_on_the_pixel_model():
    torch = pytest.importorskip("torch")
    from chansim.codecs import DiffC

    torch.set_num_threads(1)
    dims = 3 * 32 * 48
    budget = estimated_work(PRESETS["latent-fast"], dims)  # the latent-fast preset just fits
    codec = DiffC.pretrained(channel="auto", work_budget=budget, recon_steps=2)
    assert codec.channel == "auto" and codec.work_budget == budget
    img = _image()
    ev = codec.evaluate(img, [2], seed=77)[0]
    chosen = choose_preset(budget, dims)
    assert chosen == "latent-fast"
    assert [s["preset"] for s in ev.info["steps"]] == [chosen, chosen]
    assert all(s["work"] > 0 for s in ev.info["steps"])
    settings = container.unpack(ev.data).settings
    assert settings[2:6] == PRESETS[chosen].to_bytes()  # the file carries the chosen settings
    # decoders need nothing: the default-settings codec reads the channel from the file
    plain = DiffC.pretrained(recon_steps=2)
    assert np.array_equal(plain.decompress(ev.data), ev.images["flow"])
    assert np.array_equal(codec.decompress(ev.data), ev.images["flow"])
    # a named preset reports its own name; the budget belongs to "auto" only
    named = DiffC(codec.model, codec.model_id, channel="unbiased", recon_steps=2)
    assert {s["preset"] for s in named.evaluate(img, [1], seed=77, reconstructions=())[0].info["steps"]} == {"unbiased"}
    with pytest.raises(ValueError):
        DiffC(codec.model, codec.model_id, channel="unbiased", work_budget=1e9)
    with pytest.raises(ValueError):
        DiffC(codec.model, codec.model_id, channel="auto", work_budget=0)
