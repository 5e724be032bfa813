"""Peer oracle: our Dense + CUBA arithmetic equals Intel's own ``PyDenseModelBitAcc`` +
``PyLifModelBitAcc`` bit for bit, on randomized RingBuffer → Dense → LIF → RingBuffer chains.

Ours: the simulator's fused Dense + neuron loop (:func:`hw_models.neuron_loops.run_layer`) with the
readout's CUBA kernel. The draws cover weight_exp −2…6,
num_weight_bits 5…8, mixed-sign and one-sign weights, graded and binary inputs, du/dv 0…4095,
bias exponents 0…7 and thresholds up to the 17-bit maximum; the test asserts that u wraps and v
saturates in some draw. Dense outputs stay below 2^18: above that, Lava's LIF wraps u by
subtracting 2^24 only once (u can stay outside 24 bits), while our kernel wraps modulo 2^24.
"""

import numpy as np
import pytest

pytest.importorskip("lava")

from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.sink import RingBuffer as SinkRingBuffer  # noqa: E402
from lava.proc.io.source import RingBuffer  # noqa: E402
from lava.proc.lif.process import LIF  # noqa: E402
from lava.utils.weightutils import SignMode  # noqa: E402

from silif_deploy.converters.lava_backend.runner import watchdog  # noqa: E402
from silif_deploy.hw_models.dense import DenseSynapse, weight_grid  # noqa: E402
from silif_deploy.hw_models.network import FixedLayer  # noqa: E402
from silif_deploy.hw_models.neuron_cuba import CubaParams  # noqa: E402
from silif_deploy.hw_models.neuron_loops import (  # noqa: E402
    Events, PreparedLayer, Recording, input_events, payload_type, run_layer,
)

pytestmark = [pytest.mark.lava, pytest.mark.timeout(300)]

HALF = 1 << 23
A_LIMIT = 1 << 17  # keep |a| < 2^18 (module docstring)


def draw_case(rng: np.random.Generator, n_in: int = 12, n: int = 10, steps: int = 40):
    bits = int(rng.integers(5, 9))
    step_w, lo, hi = weight_grid(bits)
    sign = rng.choice(["mixed", "excitatory", "inhibitory"])
    w = step_w * rng.integers(lo // step_w, hi // step_w + 1, (n, n_in))
    w = np.minimum(np.abs(w), hi) if sign == "excitatory" else -np.abs(w) if sign == "inhibitory" else w  # stay on the grid
    graded = bool(rng.integers(2))
    x = rng.integers(0, 256, (steps, n_in)) * (rng.random((steps, n_in)) < 0.4) if graded \
        else (rng.random((steps, n_in)) < 0.3).astype(np.int64)
    exp = int(rng.integers(-2, 7))
    while exp > -2 and int(np.abs(w).sum(axis=1).max()) * int(x.max(initial=1)) << max(exp, 0) >= A_LIMIT:
        exp -= 1
    syn = DenseSynapse(w.astype(np.int64), exp, bits, graded)
    params = CubaParams(
        du=np.full(n, rng.choice([0, 1, 300, 4095, int(rng.integers(0, 4096))])),
        dv=np.full(n, rng.choice([0, 1, 4095, int(rng.integers(0, 4096))])),
        bias_mant=rng.integers(-4096, 4096, n), bias_exp=rng.integers(0, 8, n),
        vth=int(rng.choice([0, 1, (1 << 17) - 1, int(rng.integers(0, 1 << 17))])),
        input_shift=6, threshold_exponent=6, half=HALF,
    )
    return syn, params, x


def dense_outputs(syn: DenseSynapse, x: np.ndarray) -> np.ndarray:
    """What Lava's Dense delivers at every step, computed plainly: the previous step's W·x, shifted."""
    values = (x if syn.graded else (x != 0)).astype(np.int64)
    acc = values @ syn.weights.T.astype(np.int64)
    acc = acc << syn.weight_exp if syn.weight_exp >= 0 else acc >> -syn.weight_exp
    return np.vstack([np.zeros((1, syn.fan_out), np.int64), acc[:-1]])


def ours(syn: DenseSynapse, params: CubaParams, x: np.ndarray):
    """Spikes (steps, n) and (u, v) after every step, from the simulator's own Dense + CUBA layer
    loop, fed the source's payloads and running from the first step (no idling, as Intel's LIF)."""
    (steps, n_in), n = x.shape, syn.fan_out
    pre = input_events(x[None].astype(np.float64), 0, 8, Events.empty(1, steps, n_in, payload_type(8)))
    trajectory = lambda dtype: np.zeros((1, steps, n), dtype)  # noqa: E731
    rec = Recording(0, trajectory(np.uint8), (trajectory(np.int64), trajectory(np.int64)), np.zeros(1, np.int64))
    layer = PreparedLayer.of(FixedLayer("cuba", syn, params, 1), max_payload=255)
    run_layer(layer, pre, 0, Events.empty(1, steps, n), rec, 0)
    return rec.spikes[0].astype(np.int64), rec.states[0][0], rec.states[1][0]


def intels(syn: DenseSynapse, params: CubaParams, x: np.ndarray):
    """Spikes (steps, n) and final (u, v) from Lava's own processes."""
    steps, n = x.shape[0], syn.fan_out
    source = RingBuffer(data=x.T.astype(np.int32))
    dense = Dense(weights=syn.weights.astype(np.int32), weight_exp=syn.weight_exp, num_weight_bits=syn.num_weight_bits,
                  sign_mode=SignMode.MIXED, num_message_bits=8 if syn.graded else 0)
    lif = LIF(shape=(n,), du=int(params.du[0]), dv=int(params.dv[0]), bias_mant=params.bias_mant.astype(np.int32),
              bias_exp=params.bias_exp.astype(np.int32), vth=params.vth)
    sink = SinkRingBuffer(shape=(n,), buffer=steps)
    source.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    try:
        with watchdog(120, "the Lava oracle run"):
            lif.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            return sink.data.get().T.astype(np.int64), lif.u.get().astype(np.int64), lif.v.get().astype(np.int64)
    finally:
        lif.stop()


def test_dense_and_cuba_equal_intels_models() -> None:
    rng = np.random.default_rng(2024)
    wrapped = saturated = spiked = 0
    for _ in range(10):
        syn, params, x = draw_case(rng)
        spikes, us, vs = ours(syn, params, x)
        a_seq = dense_outputs(syn, x)
        assert np.abs(a_seq).max() < 2 * A_LIMIT
        lava_spikes, lava_u, lava_v = intels(syn, params, x)
        np.testing.assert_array_equal(spikes, lava_spikes, err_msg=f"spikes, {syn.num_weight_bits} bits, exp {syn.weight_exp}")
        np.testing.assert_array_equal(us[-1], lava_u, err_msg="final u")
        np.testing.assert_array_equal(vs[-1], lava_v, err_msg="final v")
        # did the states reach their limits? u wrapped: its step differs from the unwrapped sum by 2^24
        decayed = np.sign(us[:-1]) * ((np.abs(us[:-1]) * (4096 - (params.du + 1))) >> 12)
        wrapped += int(np.any(np.abs(decayed + (a_seq[1:] << 6) - us[1:]) == 2 * HALF))
        saturated += int(np.any(np.abs(vs) == HALF - 1))
        spiked += int(spikes.any())
    assert wrapped and saturated and spiked, (wrapped, saturated, spiked)
