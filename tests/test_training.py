"""The float models are trainable: surrogate gradients reach every parameter and Adam lowers the loss.

The loss is the authors': ``CrossEntropyLoss`` on the scores, i.e. on the time sum of per-step
readout softmaxes (``neurons.md`` §6, §14).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork  # noqa: E402

NEURON_PARAMS = {
    "silif": ("dt", "alpha", "beta", "a", "b"),
    "csilif": ("log_dt", "log_log_alpha", "alpha_img", "b"),
    "cadlif": ("alpha", "beta", "a", "b"),
    "lif": ("alpha",),
    "rf": ("alpha_real", "alpha_im"),
}
# BN gain that puts the membranes of a fresh network into the surrogate window on this toy input:
# LIF's (1 − α)·I and RF's Δt·I = 0.004·I barely move with unit-variance currents.
BN_GAIN = {"lif": 3.0, "rf": 40.0}
BATCH, STEPS, N_IN, HIDDEN, N_CLASSES = 8, 25, 6, [16, 16], 3


def tiny_problem(model_type: str, seed: int = 0):
    torch.manual_seed(seed)
    net = SpikingNetwork(NetworkConfig(model_type, N_IN, HIDDEN, N_CLASSES, pdrop=0.0))
    with torch.no_grad():
        for layer in net.hidden_layers:
            layer.norm.weight.fill_(BN_GAIN.get(model_type, 1.0))
    x = torch.poisson(torch.full((BATCH, STEPS, N_IN), 0.7))
    y = torch.arange(BATCH) % N_CLASSES
    return net.train(), x, y


def loss_of(net, x, y):
    return torch.nn.functional.cross_entropy(net(x), y)


@pytest.mark.parametrize("model_type", sorted(NEURON_PARAMS))
def test_gradients_reach_every_parameter(model_type):
    net, x, y = tiny_problem(model_type)
    loss_of(net, x, y).backward()
    for i, layer in enumerate(net.hidden_layers):
        names = ("W.weight", "norm.weight", "norm.bias") + tuple(NEURON_PARAMS[model_type])
        params = dict(layer.named_parameters())
        for name in names:
            grad = params[name].grad
            assert grad is not None, f"layer {i} {name}: no gradient"
            assert torch.isfinite(grad).all(), f"layer {i} {name}: non-finite gradient"
            assert grad.abs().sum() > 0, f"layer {i} {name}: zero gradient"
    for name, p in net.readout.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"readout {name}"


@pytest.mark.parametrize("model_type", ["silif", "csilif", "cadlif"])
def test_adam_steps_lower_the_loss(model_type):
    net, x, y = tiny_problem(model_type, seed=1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    with torch.no_grad():
        first = loss_of(net, x, y).item()
    for _ in range(15):
        opt.zero_grad()
        loss = loss_of(net, x, y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = loss_of(net, x, y).item()
    assert last < first - 0.05, (first, last)


def test_bn_training_updates_running_statistics():
    net, x, y = tiny_problem("silif")
    before = net.snn[0].norm.running_mean.clone()
    net(x)
    assert not torch.equal(before, net.snn[0].norm.running_mean)
    net.eval()
    after = net.snn[0].norm.running_mean.clone()
    with torch.no_grad():
        net(x)
    assert torch.equal(after, net.snn[0].norm.running_mean)
