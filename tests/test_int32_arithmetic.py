"""The int32 forms of the integer rules compute the int64 rules' integers, and a layer that switches
between them from step to step still equals the scalar reference.

``hw_models/fixed_point.py`` compiles each rule for the width of its operands; the simulator holds a
layer's chunk of samples in int32 where the kind's ``span`` bounds every value (``neuron_loops``),
and in int64 where its input would leave that bound. What each test proves:

- the int32 forms against the rules' plain-Python definitions (Python's unbounded ints, no numba,
  written apart from both compiled forms), on random operands within the int32 forms' conditions
  and on their edges;
- a SiLIF layer fed one chunk of samples inside the int32 bound and one far outside it, against
  the slow scalar reference (``scalar_reference.py``, written from the spec in Python's ints): the
  width a chunk runs in changes no spike, state or overflow count.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from random_networks import profile
from test_bit_accuracy import assert_matches_reference

from silif_deploy.hw_models import fixed_point
from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.fixed_point import overflow, saturate, shift_left, tz_mul, tz_shift, wrap
from silif_deploy.hw_models.network import FixedLayer, FixedPointNetwork
from silif_deploy.hw_models.neuron_adaptive import AdaptiveParams
from silif_deploy.hw_models.neuron_cuba import CubaParams
from silif_deploy.hw_models.neuron_loops import PreparedLayer
from silif_deploy.hw_models.simulator import CHUNK

INT32_MAX = (1 << 31) - 1


@njit
def _rules32(coef, x, k, half, mode):
    out = np.empty((7, x.shape[0]), np.int64)
    for i in range(x.shape[0]):
        out[0, i] = tz_mul(coef[i], x[i], k)
        out[1, i] = tz_shift(x[i], k)
        out[2, i] = shift_left(x[i], -k)  # a right shift: floor
        out[3, i] = shift_left(np.int32(x[i] >> k), k)
        out[4, i] = wrap(x[i], half)
        out[5, i] = saturate(x[i], half - 1)
        y, changed = overflow(x[i], mode, half)
        out[6, i] = 2 * y + changed  # y and the count in one row
    return out


def _rules_python(coef: int, x: int, k: int, half: int, mode: int) -> list[int]:
    y, changed = fixed_point.overflow(x, mode, half)
    return [fixed_point.tz_mul(coef, x, k), fixed_point.tz_shift(x, k), fixed_point.shift_left(x, -k),
            fixed_point.shift_left(x >> k, k), fixed_point.wrap(x, half), fixed_point.saturate(x, half - 1),
            2 * y + changed]


@pytest.mark.parametrize("k", [0, 1, 5, 12, 15])
@pytest.mark.parametrize("half, mode", [(1 << 23, 0), (1 << 23, 1), (1 << 30, 0), (1 << 30, 1)])
def test_the_int32_rules_compute_the_rules_integers(k: int, half: int, mode: int):
    rng = np.random.default_rng(k + half + mode)
    one, x_max = 1 << k, INT32_MAX - half  # tz_mul needs |x| + 2^k < 2^31; wrap, |x| + half < 2^31
    coef = np.concatenate([rng.integers(-one, one, 2000, endpoint=True), [one, -one, 0, one, -one, 1, -1]])
    x = np.concatenate([rng.integers(-x_max, x_max, 1000, endpoint=True), rng.integers(-3 * half, 3 * half, 1000) // 2,
                        [x_max, -x_max, 0, half, -half, half - 1, 1 - half]])
    got = _rules32(coef.astype(np.int32), x.astype(np.int32), k, half, mode)
    expected = np.array([_rules_python(int(c), int(v), k, half, mode) for c, v in zip(coef, x)]).T
    for row, rule in enumerate(["tz_mul", "tz_shift", "shift right", "shift left", "wrap", "saturate", "overflow"]):
        np.testing.assert_array_equal(got[row], expected[row], err_msg=rule)


def test_a_layer_run_in_both_widths_matches_the_reference():
    """Graded counts through 8-bit weights at exponent 7: a chunk of samples whose counts are all 1
    keeps SiLIF's Dense sums inside the int32 bound of its span and runs in int32, a chunk with
    full-scale steps (255) leaves it and runs in int64."""
    n_in, n, classes = 6, 5, 3
    rng = np.random.default_rng(7)
    weights = 2 * rng.integers(-127, 128, (n, n_in))
    weights[:, 0] = 254
    syn = DenseSynapse(weights, 7, 8, True)
    one = 1 << 12
    alpha = rng.integers(0, one, n, endpoint=True)
    params = AdaptiveParams(alpha=alpha, gain=one - alpha, beta=rng.integers(-one, one, n, endpoint=True),
                            a=rng.integers(-one, one, n, endpoint=True), b_spike=rng.integers(-1 << 20, 1 << 20, n),
                            bias=rng.integers(-1 << 20, 1 << 20, n), threshold=1 << 20, frac_bits=12, input_shift=6,
                            half=1 << 23, u_mode=0, w_mode=1)
    hidden = FixedLayer("silif", syn, params, params.threshold)
    readout_params = CubaParams(du=rng.integers(0, 4096, classes), dv=rng.integers(0, 4096, classes),
                                bias_mant=np.zeros(classes, np.int64), bias_exp=np.zeros(classes, np.int64),
                                vth=(1 << 17) - 1, input_shift=6, threshold_exponent=6, half=1 << 23)
    readout = FixedLayer("cuba", DenseSynapse(2 * rng.integers(-127, 128, (classes, n)), 0, 8, False), readout_params, 1 << 12)
    network = FixedPointNetwork.chain(model_type="silif", n_inputs=n_in, hidden=[hidden], readout=readout,
                                      input_frac_bits=0, profile=profile())
    x = np.ones((2 * CHUNK, 30, n_in), np.float32)
    x[CHUNK:, ::3] = 255.0  # the second chunk: every third step at full scale
    x[CHUNK + 1, 10:20] = rng.integers(0, 256, (10, n_in))

    prepared = PreparedLayer.of(hidden, max_payload=255)
    assert 0 <= prepared.acc_limit, "SiLIF's layer should run in int32 where its input allows"
    assert prepared.row_sum * 1 <= prepared.acc_limit < prepared.row_sum * 255  # chunk 1 narrow, chunk 2 wide
    assert_matches_reference(network, x)
