"""DiffC's encoding schedules: the γ grid whose steps the file's sections carry.

A schedule is identified by a one-byte id in the settings blob (``docs/format.md`` §7),
so it costs nothing per file. Schedule 1 (the only one so far) is a fixed γ grid in
absolute SNR terms, independent of the image:

    γ_0 = γ_max of the model (z_T ~ N(0, I) from Philox),
    then 4.0, 3.0, 2.5, and 2.0, 1.5, 1.0, …, −6.0 (steps of ½), keeping only values
    inside the model's open range (γ_min, γ_max): 20 steps for the default model.

Why this grid: the cumulative KL of the default model's reverse process on Kodak crops
(measured with ``benchmarks/eval_diffc.py --rate-curve``) is ≈ 0.03 bpp at γ = 2,
0.5 bpp at γ = −2 and 2–3 bpp at γ = −5…−6, and grows by a factor 1.2–1.5 per half
unit of γ. A uniform half-unit grid therefore gives quality points spaced roughly
geometrically in rate over 0.03–3 bpp, which is what a quality knob should do, and
keeps every step's KL moderate (≤ ~0.15 bits/dimension). Above γ = 2 the three coarser
steps matter: a step's KL is ½ (SNR_s − SNR_t) ‖x − x̂(z_t)‖², with x̂ taken at the
step's start, and a single jump from γ_max to 2 (x̂ ≈ the mean image) measured 4× the
KL of these three steps on a Kodak crop.
"""

from __future__ import annotations

from typing import List

#: Schedule 1's grid below the starting level (float64 exact binary fractions).
HALF_GAMMA_GRID = (4.0, 3.0, 2.5) + tuple(2.0 - 0.5 * k for k in range(17))  # 4, 3, 2.5, 2.0 … −6.0
SCHEDULES = {1: "4, 3, 2.5, then 2.0 … −6.0 in steps of ½, below the model's γ_max"}
DEFAULT_SCHEDULE = 1


def gamma_grid(schedule, schedule_id: int = DEFAULT_SCHEDULE) -> List[float]:
    """[γ_0 > γ_1 > … > γ_N]: z_T lives at γ_0, section i takes γ_{i} → γ_{i+1}.

    ``schedule`` is the model's γ(t) (``gamma_min``/``gamma_max`` are read once and
    rounded to float64 identically on both sides: they are float32 parameters).
    """
    if schedule_id not in SCHEDULES:
        raise ValueError(f"unknown DiffC schedule id {schedule_id}; known: {sorted(SCHEDULES)}")
    g_max, g_min = float(schedule.gamma_max), float(schedule.gamma_min)
    grid = [g_max] + [g for g in HALF_GAMMA_GRID if g_min < g < g_max]
    if len(grid) < 2:
        raise ValueError(f"the model's γ range ({g_min:.3f}, {g_max:.3f}) holds none of schedule "
                         f"{schedule_id}'s levels {HALF_GAMMA_GRID[0]} … {HALF_GAMMA_GRID[-1]}")
    return grid
