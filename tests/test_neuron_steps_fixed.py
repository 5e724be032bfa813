"""Hand-computed integer steps of one neuron of each kind, through the public pure step
``hw_models.neuron_kinds.step``. Every expected number is worked out in the comments from the
kernel docstrings (the integer spec): F = 12 (2^F = 4096), tz = truncation toward zero, A = a << 6,
24-bit states: wrap into (−2^23, 2^23], saturate to ±(2^23 − 1) = ±8,388,607.
"""

from __future__ import annotations

import numpy as np
import pytest

from silif_deploy.hw_models.neuron_adaptive import AdaptiveParams
from silif_deploy.hw_models.neuron_cuba import CubaParams
from silif_deploy.hw_models.neuron_kinds import NeuronState, step
from silif_deploy.hw_models.neuron_resonate import ResonateParams

HALF = 1 << 23
WRAP, SATURATE = 0, 1


def arr(v: int) -> np.ndarray:
    return np.array([v], np.int64)


def adaptive(alpha, beta=0, a=0, b_spike=0, bias=0, threshold=1000, gain=None, u_mode=SATURATE, w_mode=SATURATE):
    gain = 4096 - alpha if gain is None else gain
    return AdaptiveParams(arr(alpha), arr(gain), arr(beta), arr(a), arr(b_spike), arr(bias), threshold,
                          12, 6, HALF, u_mode, w_mode)


def resonate(lam_re, lam_im, reset_first, gain=4096, bias=0, threshold=1000, mode=SATURATE):
    return ResonateParams(arr(lam_re), arr(lam_im), arr(gain), arr(bias), threshold, 12, 6, HALF, mode, reset_first)


def cuba(du, dv, bias_mant=0, bias_exp=0, vth=(1 << 17) - 1):
    return CubaParams(arr(du), arr(dv), arr(bias_mant), arr(bias_exp), vth, 6, 6, HALF)


def run(kind: str, params, inputs: list[int], x1: int = 0, x2: int = 0, s: int = 0) -> list[tuple[int, int, int]]:
    """(s_t, x1_t, x2_t) after each input, from the given start state."""
    state = NeuronState(np.stack([arr(x1), arr(x2)]), arr(s))
    out = []
    for a in inputs:
        spikes, state = step(kind, arr(a), state, params)
        assert np.array_equal(spikes, state.s)
        out.append((int(spikes[0]), int(state.states[0][0]), int(state.states[1][0])))
    return out


@pytest.mark.parametrize("kind", ["silif", "adlif", "cadlif"])
def test_adaptive_spike_reset_and_negative_truncation(kind):
    # α = g = 2048 (½), β = 2048, a = 1023, b_spike = 100, θ = 1000.
    # t1: a = 20, A = 1280.  w = 0.  u = tz(2048·1280, 12) = 640.                            no spike
    # t2: a = 40, A = 2560.  w = tz(1023·640 = 654720, 12) = 159 (159.84).
    #     u = tz(2048·640, 12) + tz(2048·(2560 − 159) = 4917248, 12) = 320 + 1200 = 1520 > 1000: spike
    # t3: a = 0.  w = tz(2048·159 = 325632, 12) + tz(1023·1520 = 1554960, 12) + 100·1 = 79 + 379 + 100 = 558
    #     u = tz(2048·(1520 − 1000), 12) + tz(2048·(0 − 558), 12) = 260 − 279 = −19       (soft reset)
    # t4: a = 0.  w = tz(2048·558, 12) + tz(1023·(−19) = −19437, 12) = 279 − 4 = 275  (−4.75 → −4, not −5)
    #     u = tz(2048·(−19) = −38912, 12) + tz(2048·(−275) = −563200, 12) = −9 − 137 = −146  (−9.5 → −9, −137.5 → −137)
    p = adaptive(alpha=2048, beta=2048, a=1023, b_spike=100)
    assert run(kind, p, [20, 40, 0, 0]) == [(0, 640, 0), (1, 1520, 159), (0, -19, 558), (0, -146, 275)]


def test_lif_spike_reset_strict_threshold_and_negative_truncation():
    # LIF: β = a = b_spike = 0 (w stays 0). α = 3096, g = 1000, θ = 640.
    # t1: a = 50, A = 3200: u = tz(1000·3200 = 3200000, 12) = 781 (781.25) > 640: spike
    # t2: a = −5, A = −320: u = tz(3096·(781 − 640) = 436536, 12) + tz(1000·(−320) = −320000, 12)
    #                         = 106 (106.58) − 78 (−78.125 → −78, not −79) = 28
    p = adaptive(alpha=3096, gain=1000, threshold=640)
    assert run("lif", p, [50, -5]) == [(1, 781, 0), (0, 28, 0)]
    # Strict compare: α = 0, g = 4096 makes u = A; A = 640 = θ does not spike, A = 704 does.
    p = adaptive(alpha=0, threshold=640)
    assert run("lif", p, [10, 11]) == [(0, 640, 0), (1, 704, 0)]


@pytest.mark.parametrize(
    "mode, a_in, expected_u",
    [
        # α = 0, g = 4096: u = A.  A = 131073 << 6 = 8388672 = 2^23 + 64.
        (WRAP, 131073, 8388672 - (1 << 24)),  # −8388544
        (SATURATE, 131073, 8388607),
        # The wrap range is (−2^23, 2^23]: 2^23 stays, −2^23 becomes +2^23.
        (WRAP, 131072, 1 << 23),
        (WRAP, -131072, 1 << 23),
        (SATURATE, -131072, -8388607),
    ],
)
def test_adaptive_membrane_wraps_or_saturates(mode, a_in, expected_u):
    p = adaptive(alpha=0, threshold=1 << 22, u_mode=mode)
    (s, u, w), = run("lif", p, [a_in])
    assert (u, w) == (expected_u, 0)
    assert s == int(expected_u > 1 << 22)


@pytest.mark.parametrize("mode, expected_w", [(WRAP, 9_000_000 - (1 << 24)), (SATURATE, 8388607)])
def test_adaptation_state_wraps_or_saturates(mode, expected_w):
    # β = 4096 (a perfect integrator), b_spike = 1,000,000, w = 8,000,000 and a spike last step:
    # w = 8,000,000 + 1,000,000 = 9,000,000 > 2^23 − 1.  α = 4096, g = 0: u keeps u − θ·s = 0.
    p = adaptive(alpha=4096, beta=4096, b_spike=1_000_000, threshold=1000, w_mode=mode)
    assert run("silif", p, [0], x1=1000, x2=8_000_000, s=1) == [(0, 0, expected_w)]


def test_csilif_resets_before_the_rotation():
    # λ = 2048 − 1365i, g = 4096, θ = 1000.
    # t1: a = 20, A = 1280: p = 0 − 0 + tz(4096·1280, 12) = 1280 > 1000: spike; q = 0
    # t2: a = 0: r = 1280 − 1000 = 280.  p = tz(2048·280, 12) − tz(−1365·0, 12) = 140
    #     q = tz(−1365·280 = −382200, 12) + 0 = −93 (−93.31 → −93, not −94)
    # t3: a = 0: r = 140.  p = tz(2048·140, 12) − tz(−1365·(−93) = 126945, 12) = 70 − 30 = 40
    #     q = tz(−1365·140 = −191100, 12) + tz(2048·(−93) = −190464, 12) = −46 − 46 = −92
    p = resonate(2048, -1365, reset_first=1)
    assert run("csilif", p, [20, 0, 0]) == [(1, 1280, 0), (0, 140, -93), (0, 40, -92)]


def test_rf_resets_after_the_rotation():
    # Same λ and input as above; RF subtracts θ after rotating the unreset state.
    # t2: p = tz(2048·1280, 12) − 0 + 0 − 1000 = −360;  q = tz(−1365·1280 = −1747200, 12) = −426 (−426.56)
    # t3: p = tz(2048·(−360), 12) − tz(−1365·(−426) = 581490, 12) = −180 − 141 = −321
    #     q = tz(−1365·(−360) = 491400, 12) + tz(2048·(−426), 12) = 119 − 213 = −94
    p = resonate(2048, -1365, reset_first=0)
    assert run("rf", p, [20, 0, 0]) == [(1, 1280, 0), (0, -360, -426), (0, -321, -94)]


@pytest.mark.parametrize("kind", ["csilif", "rf"])
@pytest.mark.parametrize("mode, expected_q", [(WRAP, 9_000_000 - (1 << 24)), (SATURATE, 8388607)])
def test_resonator_growing_past_the_limit(kind, mode, expected_q):
    # λ = 1 + i (|λ| = √2), no input, no spike last step: p = 6e6 − 3e6 = 3e6, q = 6e6 + 3e6 = 9e6.
    p = resonate(4096, 4096, reset_first=int(kind == "csilif"), gain=0, threshold=1 << 22, mode=mode)
    assert run(kind, p, [0], x1=6_000_000, x2=3_000_000) == [(0, 3_000_000, expected_q)]


def test_cuba_decays_spike_reset_and_negative_truncation():
    # Lava LIF: du = 1023 → u factor 4096 − 1024 = 3072; dv = 1024 → v factor 3072;
    # bias = 3 << 2 = 12; threshold 20 << 6 = 1280.
    # t1: a = 10: u = 0 + 640 = 640; v = 0 + 640 + 12 = 652
    # t2: a = 10: u = tz(640·3072, 12) + 640 = 480 + 640 = 1120
    #     v = tz(652·3072 = 2002944, 12) + 1120 + 12 = 489 + 1132 = 1621 > 1280: spike, v = 0 (u kept)
    # t3: a = −7: u = tz(1120·3072, 12) − 448 = 840 − 448 = 392; v = 0 + 392 + 12 = 404
    # t4: a = −20: u = tz(392·3072, 12) − 1280 = 294 − 1280 = −986; v = tz(404·3072, 12) − 986 + 12 = 303 − 974 = −671
    # t5: a = 0: u = tz(−986·3072 = −3028992, 12) = −739 (−739.5 → −739, not −740)
    #     v = tz(−671·3072 = −2061312, 12) − 739 + 12 = −503 (−503.25) − 727 = −1230
    p = cuba(du=1023, dv=1024, bias_mant=3, bias_exp=2, vth=20)
    assert run("cuba", p, [10, 10, -7, -20, 0]) == [
        (0, 640, 652), (1, 1120, 0), (0, 392, 404), (0, -986, -671), (0, -739, -1230)
    ]


def test_cuba_current_wraps_and_membrane_saturates():
    # du = 4095: u = A (memoryless).  A = 131073 << 6 = 2^23 + 64 wraps to −8388544.
    # dv = 0: v = −8,000,000 − 8,388,544 = −16,388,544, saturated to −8,388,607.
    assert run("cuba", cuba(du=4095, dv=0), [131073], x2=-8_000_000) == [(0, -8388544, -8388607)]
    # A = 2^23 stays 2^23 (top of the wrap range); v = 8,000,000 + 8,388,608 saturates to 8,388,607,
    # above the largest threshold (2^17 − 1) << 6 = 8,388,544: a saturated v spikes and resets to 0.
    assert run("cuba", cuba(du=4095, dv=0), [131072], x2=8_000_000) == [(1, 1 << 23, 0)]


def test_cuba_negative_bias_exponent_floors():
    # bias = −5 >> 1 = −3 (arithmetic shift: floor, not −2).
    assert run("cuba", cuba(du=4095, dv=0, bias_mant=-5, bias_exp=-1), [0, 0]) == [(0, 0, -3), (0, 0, -6)]
