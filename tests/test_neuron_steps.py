"""Hand-computed single-neuron tests for every neuron type (``neurons.md`` §3–§9).

Each test builds a 1-input layer with W = 1 and an identity BatchNorm (eval mode, running mean 0,
running variance 1 − 1e-5 so that var + eps is exactly 1 in float32), sets the raw parameters, and
compares the layer's trajectory with values worked out from the equations in plain Python floats.
"""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork  # noqa: E402
from silif_deploy.converters.families.adaptive import AdLIFLayer, CAdLIFLayer, LIFLayer, SiLIFLayer  # noqa: E402
from silif_deploy.converters.families.readout import ReadoutLayer  # noqa: E402
from silif_deploy.converters.families.resonate import CSiLIFLayer, RFLayer  # noqa: E402
from silif_deploy.converters.torch_neurons import BoxcarSpike  # noqa: E402

RTOL, ATOL = 1e-5, 1e-6
LIF_RANGE = (math.exp(-1 / 5), math.exp(-1 / 25))  # 0.818731, 0.960789


def identity_layer(layer, **raw):
    """W = 1 (all weights), BN identity in eval mode, raw neuron parameters set from ``raw``."""
    layer.eval()
    with torch.no_grad():
        layer.W.weight.fill_(1.0)
        layer.norm.running_mean.zero_()
        layer.norm.running_var.fill_(1.0 - 1e-5)
        layer.norm.weight.fill_(1.0)
        layer.norm.bias.zero_()
        for name, value in raw.items():
            getattr(layer, name).fill_(value)
    return layer


def run_layer(layer, currents):
    x = torch.tensor(currents, dtype=torch.float32).reshape(1, -1, 1)
    with torch.no_grad():
        spikes, states = layer(x, record_states=True)
    return spikes[0, :, 0].numpy(), {k: v[0, :, 0].numpy() for k, v in states.items()}


def test_identity_bn_passes_input_exactly():
    layer = identity_layer(SiLIFLayer(1, 1))
    x = torch.tensor([2.0, 4.0, 0.3, -7.0, 1.0]).reshape(1, 5, 1)
    with torch.no_grad():
        assert torch.equal(layer.input_current(x), x)


def test_batchnorm_eval_formula():
    """I = (Wx − running_mean) / sqrt(running_var + 1e-5) · γ + β_bn, per neuron."""
    layer = SiLIFLayer(1, 1).eval()
    with torch.no_grad():
        layer.W.weight.fill_(2.0)
        layer.norm.running_mean.fill_(0.5)
        layer.norm.running_var.fill_(3.0)
        layer.norm.weight.fill_(1.5)
        layer.norm.bias.fill_(0.25)
        current = layer.input_current(torch.tensor([1.0, -2.0]).reshape(1, 2, 1))[0, :, 0]
    expected = [(2.0 * x - 0.5) / math.sqrt(3.0 + 1e-5) * 1.5 + 0.25 for x in (1.0, -2.0)]
    np.testing.assert_allclose(current.numpy(), expected, rtol=RTOL)


# --------------------------------------------------------------------------------------- SiLIF


def silif_reference(alpha, beta, a, b, currents):
    """§4.4 step by step: w uses the previous u and s; u uses the new w; soft reset before the leak."""
    u = w = s = 0.0
    us, ws, ss = [], [], []
    for i in currents:
        w = beta * w + a * u + b * s
        u = alpha * (u - s) + (1 - alpha) * (i - w)
        s = 1.0 if u - 1.0 > 0 else 0.0
        us.append(u), ws.append(w), ss.append(s)
    return us, ws, ss


def silif_raw(alpha, beta, dt=0.0):
    """Raw logs giving decay α and β: α = exp(−exp(p_alpha)·exp(p_dt))."""
    return {
        "dt": dt,
        "alpha": math.log(-math.log(alpha)) - dt,
        "beta": math.log(-math.log(beta)) - dt,
    }


def test_silif_coefficients_and_clamps():
    layer = identity_layer(SiLIFLayer(1, 1), **silif_raw(0.5, 0.75, dt=math.log(0.004)), a=3.0, b=-1.0)
    c = layer.coefficients()
    assert c["alpha"].item() == pytest.approx(0.5, rel=1e-6)
    assert c["beta"].item() == pytest.approx(0.75, rel=1e-6)
    assert c["a"].item() == 1.0  # raw 3 → clamp [0, 1]
    assert c["b"].item() == 0.0  # raw −1 → clamp [0, 2]
    layer = identity_layer(SiLIFLayer(1, 1), a=-0.5, b=5.0)
    assert layer.coefficients()["a"].item() == 0.0
    assert layer.coefficients()["b"].item() == 2.0


def test_silif_spike_triggered_adaptation():
    # α = β = 0.5, raw a = −0.5 → 0, raw b = 5 → 2
    layer = identity_layer(SiLIFLayer(1, 1), **silif_raw(0.5, 0.5), a=-0.5, b=5.0)
    spikes, states = run_layer(layer, [4.0, 0.0, 4.0, 0.0])
    # t1: w = 0,                     u = 0.5·0 + 0.5·(4 − 0) = 2        → spike
    # t2: w = 0.5·0 + 0·2 + 2·1 = 2, u = 0.5·(2 − 1) + 0.5·(0 − 2) = −0.5
    # t3: w = 0.5·2 = 1,             u = 0.5·(−0.5) + 0.5·(4 − 1) = 1.25 → spike
    # t4: w = 0.5 + 0 + 2 = 2.5,     u = 0.5·(1.25 − 1) + 0.5·(0 − 2.5) = −1.125
    np.testing.assert_array_equal(spikes, [1, 0, 1, 0])
    np.testing.assert_allclose(states["w"], [0.0, 2.0, 1.0, 2.5], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(states["u"], [2.0, -0.5, 1.25, -1.125], rtol=RTOL, atol=ATOL)


def test_silif_subthreshold_coupling():
    # α = β = 0.5, raw a = 3 → 1, raw b = −1 → 0
    layer = identity_layer(SiLIFLayer(1, 1), **silif_raw(0.5, 0.5), a=3.0, b=-1.0)
    spikes, states = run_layer(layer, [4.0, 4.0, 0.0])
    # t1: w = 0,               u = 2                               → spike
    # t2: w = 0 + 1·2 + 0 = 2, u = 0.5·(2 − 1) + 0.5·(4 − 2) = 1.5 → spike
    # t3: w = 1 + 1.5 = 2.5,   u = 0.5·(1.5 − 1) + 0.5·(0 − 2.5) = −1
    np.testing.assert_array_equal(spikes, [1, 1, 0])
    np.testing.assert_allclose(states["w"], [0.0, 2.0, 2.5], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(states["u"], [2.0, 1.5, -1.0], rtol=RTOL, atol=ATOL)


def test_silif_threshold_is_strict():
    layer = identity_layer(SiLIFLayer(1, 1), **silif_raw(0.5, 0.5), a=0.0, b=0.0)
    spikes, states = run_layer(layer, [2.0, 2.0])
    # u1 = 0.5·2 = 1 exactly: H(0) = 0, no spike; u2 = 0.5 + 1 = 1.5 → spike
    assert states["u"][0] == 1.0
    np.testing.assert_array_equal(spikes, [0, 1])


def test_silif_longer_run_matches_reference():
    raw = silif_raw(0.8, 0.95, dt=math.log(0.004))
    layer = identity_layer(SiLIFLayer(1, 1), **raw, a=0.3, b=0.7)
    currents = [3.0, 2.5, 0.0, 6.0, -1.0, 4.0, 4.0, 0.5, 8.0, 0.0]
    c = layer.coefficients()
    us, ws, ss = silif_reference(c["alpha"].item(), c["beta"].item(), 0.3, 0.7, currents)
    spikes, states = run_layer(layer, currents)
    assert sum(ss) >= 2
    np.testing.assert_array_equal(spikes, ss)
    np.testing.assert_allclose(states["u"], us, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(states["w"], ws, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------- adLIF and cAdLIF


@pytest.mark.parametrize(
    "cls, raw, effective",
    [
        # adLIF ranges: α [e^−1/5, e^−1/25], β [e^−1/30, e^−1/120], a [−1, 1], b [0, 2]
        (AdLIFLayer, dict(alpha=0.5, beta=2.0, a=-3.0, b=5.0),
         dict(alpha=math.exp(-1 / 5), beta=math.exp(-1 / 120), a=-1.0, b=2.0)),
        (AdLIFLayer, dict(alpha=1.5, beta=0.1, a=0.4, b=-1.0),
         dict(alpha=math.exp(-1 / 25), beta=math.exp(-1 / 30), a=0.4, b=0.0)),
        # cAdLIF ranges: α [0.36, 0.96], β [0.96, 0.99], a [0, 1], b [0, 2]
        (CAdLIFLayer, dict(alpha=0.1, beta=1.2, a=-0.5, b=0.7),
         dict(alpha=0.36, beta=0.99, a=0.0, b=0.7)),
        (CAdLIFLayer, dict(alpha=1.3, beta=0.5, a=3.0, b=3.0),
         dict(alpha=0.96, beta=0.96, a=1.0, b=2.0)),
        (CAdLIFLayer, dict(alpha=0.5, beta=0.97, a=0.25, b=1.0),
         dict(alpha=0.5, beta=0.97, a=0.25, b=1.0)),
    ],
)
def test_adaptive_lif_clamps_and_steps(cls, raw, effective):
    layer = identity_layer(cls(1, 1), **raw)
    c = layer.coefficients()
    for name, value in effective.items():
        assert c[name].item() == pytest.approx(value, rel=1e-6, abs=1e-7), name
    currents = [30.0, 30.0, 0.0, 0.0, 30.0, -5.0, 12.0, 12.0]
    us, ws, ss = silif_reference(*(effective[k] for k in ("alpha", "beta", "a", "b")), currents)
    spikes, states = run_layer(layer, currents)
    assert ss[0] == 1.0 and sum(ss) >= 2
    np.testing.assert_array_equal(spikes, ss)
    np.testing.assert_allclose(states["u"], us, rtol=RTOL, atol=1e-5)
    np.testing.assert_allclose(states["w"], ws, rtol=RTOL, atol=1e-5)


def test_cadlif_hand_steps():
    # α = 0.5, β = 0.97, a = 0.25, b = 1
    layer = identity_layer(CAdLIFLayer(1, 1), alpha=0.5, beta=0.97, a=0.25, b=1.0)
    spikes, states = run_layer(layer, [4.0, 0.0])
    # t1: w = 0, u = 0.5·4 = 2 → spike
    # t2: w = 0.97·0 + 0.25·2 + 1·1 = 1.5, u = 0.5·(2 − 1) + 0.5·(0 − 1.5) = −0.25
    np.testing.assert_array_equal(spikes, [1, 0])
    np.testing.assert_allclose(states["w"], [0.0, 1.5], rtol=RTOL)
    np.testing.assert_allclose(states["u"], [2.0, -0.25], rtol=RTOL)


# ----------------------------------------------------------------------------------------- LIF


@pytest.mark.parametrize("raw, alpha", [(0.9, 0.9), (0.0, LIF_RANGE[0]), (2.0, LIF_RANGE[1])])
def test_lif_clamp_and_steps(raw, alpha):
    layer = identity_layer(LIFLayer(1, 1), alpha=raw)
    assert layer.coefficients()["alpha"].item() == pytest.approx(alpha, rel=1e-6)
    currents = [60.0, 0.0, 20.0, 20.0, 0.0, 50.0]
    u = s = 0.0
    us, ss = [], []
    for i in currents:
        u = alpha * (u - s) + (1 - alpha) * i
        s = 1.0 if u > 1.0 else 0.0
        us.append(u), ss.append(s)
    spikes, states = run_layer(layer, currents)
    assert ss[0] == 1.0
    np.testing.assert_array_equal(spikes, ss)
    np.testing.assert_allclose(states["u"], us, rtol=RTOL, atol=ATOL)


def test_lif_hand_steps():
    layer = identity_layer(LIFLayer(1, 1), alpha=0.9)
    spikes, states = run_layer(layer, [15.0, 0.0, 0.0])
    # t1: u = 0.1·15 = 1.5 → spike; t2: u = 0.9·(1.5 − 1) = 0.45; t3: u = 0.9·0.45 = 0.405
    np.testing.assert_array_equal(spikes, [1, 0, 0])
    np.testing.assert_allclose(states["u"], [1.5, 0.45, 0.405], rtol=RTOL)


# ------------------------------------------------------------------------------------- C-SiLIF


def csilif_raw(decay, angle, b, log_dt=0.0):
    """Raw parameters giving λ = decay·e^{i·angle}: λ = exp((−exp(p_lla) + i·p_img)·exp(p_dt))."""
    dt = math.exp(log_dt)
    return {
        "log_dt": log_dt,
        "log_log_alpha": math.log(-math.log(decay) / dt),
        "alpha_img": angle / dt,
        "b": b,
    }


def test_csilif_coefficients():
    layer = identity_layer(CSiLIFLayer(1, 1), **csilif_raw(0.8, 0.3, -1.25, log_dt=math.log(0.05)))
    c = layer.coefficients()
    assert c["lambda"].dtype == torch.complex64
    lam = complex(c["lambda"].item())
    expected = 0.8 * cmath.exp(0.3j)
    assert abs(lam - expected) < 1e-6
    assert c["b"].item() == -1.25  # b is not clamped


def test_csilif_hand_steps():
    # λ = 0.5·e^{iπ/2} = 0.5i, b = 0.5
    layer = identity_layer(CSiLIFLayer(1, 1), **csilif_raw(0.5, math.pi / 2, 0.5))
    spikes, states = run_layer(layer, [4.0, 0.0, 0.0, 3.0, 0.0])
    # t1: u = 0.5·4 = 2                      2Re = 4 > 1 → spike
    # t2: u = 0.5i·(2 − 0.5) = 0.75i         (half reset before the rotation)
    # t3: u = 0.5i·0.75i = −0.375
    # t4: u = 0.5i·(−0.375) + 0.5·3 = 1.5 − 0.1875i   2Re = 3 → spike
    # t5: u = 0.5i·(1.5 − 0.1875i − 0.5) = 0.09375 + 0.5i
    expected = [2, 0.75j, -0.375, 1.5 - 0.1875j, 0.09375 + 0.5j]
    np.testing.assert_array_equal(spikes, [1, 0, 0, 1, 0])
    np.testing.assert_allclose(states["u"], expected, rtol=RTOL, atol=ATOL)


def test_csilif_threshold_on_twice_real_part():
    # λ = 0.5 (real), b = 1: u1 = I
    layer = identity_layer(CSiLIFLayer(1, 1), **csilif_raw(0.5, 0.0, 1.0))
    spikes, _ = run_layer(layer, [0.5, 0.0])
    assert spikes.tolist() == [0.0, 0.0]  # 2·0.5 − 1 = 0: strict, no spike
    spikes, _ = run_layer(layer, [0.6, 0.0])
    assert spikes.tolist() == [1.0, 0.0]  # 2·0.6 > 1, although Re u = 0.6 < 1


def test_csilif_longer_run_matches_reference():
    raw = csilif_raw(0.9, 2.0, 0.8, log_dt=math.log(0.3))
    layer = identity_layer(CSiLIFLayer(1, 1), **raw)
    lam = complex(layer.coefficients()["lambda"].item())
    currents = [2.0, 0.0, 1.0, 0.0, 0.0, 3.0, -1.0, 0.5, 2.0, 0.0]
    u, s = 0j, 0.0
    us, ss = [], []
    for i in currents:
        u = lam * (u - 0.5 * s) + 0.8 * i
        s = 1.0 if 2 * u.real - 1 > 0 else 0.0
        us.append(u), ss.append(s)
    spikes, states = run_layer(layer, currents)
    assert sum(ss) >= 2
    np.testing.assert_array_equal(spikes, ss)
    np.testing.assert_allclose(states["u"], us, rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------------------------------ RF


@pytest.mark.parametrize("raw_re, re", [(5.0, -0.1), (-0.05, -0.1), (-3.0, -3.0)])
def test_rf_clamp(raw_re, re):
    layer = identity_layer(RFLayer(1, 1), alpha_real=raw_re, alpha_im=-20.0)
    c = layer.coefficients()
    assert complex(c["A"].item()) == pytest.approx(complex(re, -20.0), rel=1e-6)  # alpha_im unclamped
    assert complex(c["lambda"].item()) == pytest.approx(1 + 0.004 * complex(re, -20.0), rel=1e-6)


def test_rf_hand_steps():
    # A = −0.1 + 10i (raw real part 5 clamps to −0.1), Δt = 0.004
    layer = identity_layer(RFLayer(1, 1), alpha_real=5.0, alpha_im=10.0)
    currents = [500.0, 0.0, 0.0, 300.0, 0.0]
    spikes, states = run_layer(layer, currents)
    # t1: u = 0 + 0.004·500 = 2 → spike
    # t2: u = 2 + 0.004·(A·2) − 1 = 0.9992 + 0.08i (reset after the update, not decayed)
    a = complex(-0.1, 10.0)
    u, s = 0j, 0.0
    us, ss = [], []
    for i in currents:
        u = u + 0.004 * (a * u + i) - s
        s = 1.0 if u.real - 1 > 0 else 0.0
        us.append(u), ss.append(s)
    assert us[1] == pytest.approx(0.9992 + 0.08j)
    np.testing.assert_array_equal(spikes, ss)
    assert ss[:2] == [1.0, 0.0] and sum(ss) >= 2
    np.testing.assert_allclose(states["u"], us, rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------------------------- readout


@pytest.mark.parametrize("raw, alpha", [(0.9, 0.9), (0.5, LIF_RANGE[0]), (1.2, LIF_RANGE[1])])
def test_readout_clamp_and_scores(raw, alpha):
    layer = ReadoutLayer(1, 2).eval()
    with torch.no_grad():
        layer.W.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        layer.norm.running_mean.zero_()
        layer.norm.running_var.fill_(1.0 - 1e-5)
        layer.norm.weight.fill_(1.0)
        layer.norm.bias.zero_()
        layer.alpha.fill_(raw)
    assert layer.coefficients()["alpha"].tolist() == pytest.approx([alpha, alpha], rel=1e-6)
    x = [1.0, 0.0, 1.0, 1.0]
    u = [0.0, 0.0]
    traj, score = [], [0.0, 0.0]
    for xi in x:
        current = [xi, -xi]
        u = [alpha * u[k] + (1 - alpha) * current[k] for k in range(2)]
        e = [math.exp(v) for v in u]
        score = [score[k] + e[k] / sum(e) for k in range(2)]
        traj.append(list(u))
    with torch.no_grad():
        scores, readout_u = layer(torch.tensor(x).reshape(1, 4, 1))
    np.testing.assert_allclose(readout_u[0].numpy(), traj, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(scores[0].numpy(), score, rtol=RTOL, atol=ATOL)
    assert scores.sum().item() == pytest.approx(4.0, rel=1e-6)  # one softmax per step
    assert scores[0, 0] > scores[0, 1]


def test_readout_hand_steps():
    layer = ReadoutLayer(1, 2).eval()
    with torch.no_grad():
        layer.W.weight.copy_(torch.tensor([[2.0], [0.0]]))
        layer.norm.running_mean.zero_()
        layer.norm.running_var.fill_(1.0 - 1e-5)
        layer.norm.weight.fill_(1.0)
        layer.norm.bias.zero_()
        layer.alpha.fill_(0.9)
        scores, u = layer(torch.tensor([1.0, 1.0]).reshape(1, 2, 1))
    # u1 = 0.1·2 = 0.2, u2 = 0.9·0.2 + 0.1·2 = 0.38 (class 1 stays 0)
    np.testing.assert_allclose(u[0, :, 0].numpy(), [0.2, 0.38], rtol=RTOL)
    expected = 1 / (1 + math.exp(-0.2)) + 1 / (1 + math.exp(-0.38))
    assert scores[0, 0].item() == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------------- surrogate, init states


def test_boxcar_surrogate():
    x = torch.tensor([-0.6, -0.5, -0.49, 0.0, 0.3, 0.5, 0.51], requires_grad=True)
    y = BoxcarSpike.apply(x)
    assert y.tolist() == [0, 0, 0, 0, 1, 1, 1]
    y.sum().backward()
    assert x.grad.tolist() == [0, 0, 1, 1, 1, 1, 0]


ALL_HIDDEN = (SiLIFLayer, CSiLIFLayer, AdLIFLayer, CAdLIFLayer, LIFLayer, RFLayer)


@pytest.mark.parametrize("cls", ALL_HIDDEN, ids=lambda c: c.model_type)
def test_initial_state_zeros_and_random(cls):
    layer = cls(3, 4)
    like = torch.zeros(5, 4)
    zeros = layer.initial_state(5, "zeros", like)
    assert all(torch.count_nonzero(z) == 0 for z in zeros)
    first = layer.initial_state(5, "random", like)
    second = layer.initial_state(5, "random", like)
    assert len(first) == len(zeros)
    for a, b in zip(first, second):
        assert a.shape == (5, 4)
        parts = (a.real, a.imag) if a.is_complex() else (a,)
        for p in parts:
            assert float(p.min()) >= 0.0 and float(p.max()) < 1.0
            assert float(p.std()) > 0.05  # a genuine U[0,1) draw, not a constant
        assert not torch.equal(a, b)


@pytest.mark.parametrize("model_type", ["silif", "csilif", "cadlif", "adlif", "lif", "rf"])
def test_network_default_zeros_random_option(model_type):
    torch.manual_seed(1)
    net = SpikingNetwork(NetworkConfig(model_type, 6, [8, 8], 3)).eval()
    assert net.config.init_state == "zeros"
    x = (torch.rand(2, 12, 6) * 3).round()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
        net.config.init_state = "random"
        assert not torch.equal(net(x), net(x))
    # Readout u0 alone differs under "random": with a zero input the readout still moves.
    readout = net.readout
    with torch.no_grad():
        _, u_zero = readout(torch.zeros(1, 2, 8), init_state="zeros")
        _, u_rand = readout(torch.zeros(1, 2, 8), init_state="random")
    assert not torch.equal(u_zero, u_rand)


@pytest.mark.parametrize("model_type", ["silif", "csilif", "cadlif"])
def test_dropout_inactive_in_eval_active_in_train(model_type):
    torch.manual_seed(2)
    net = SpikingNetwork(NetworkConfig(model_type, 6, [32, 32], 3, pdrop=0.5))
    with torch.no_grad():
        for layer in net.hidden_layers:
            layer.norm.weight.fill_(3.0)  # plenty of spikes
    x = (torch.rand(4, 20, 6) * 3).round()
    net.eval()
    with torch.no_grad():
        _, sp1, _, _ = net.forward_all(x)
        _, sp2, _, _ = net.forward_all(x)
    for a, b in zip(sp1, sp2):
        assert torch.equal(a, b)
        assert set(a.unique().tolist()) <= {0.0, 1.0}
    net.train()
    with torch.no_grad():
        _, tr1, _, _ = net.forward_all(x)
        _, tr2, _, _ = net.forward_all(x)
    assert not torch.equal(tr1[0], tr2[0])
    assert set(tr1[0].unique().tolist()) <= {0.0, 2.0}  # kept spikes scaled by 1/(1 − p)
    assert tr1[0].sum() > 0
