"""The netx file (lava-dl's HDF5 layout): the readout follows netx's CUBA keys exactly, and the
file holds the network exactly (read back, it runs bit for bit as the original).

lava-dl's own loader (``netx.hdf5.Network``) reading these files and running them in Lava is
``test_netx_lava.py`` (Lava environment).
"""

import dataclasses

import h5py
import numpy as np
import pytest

from random_networks import float_network
from silif_deploy.converters.netx_export import NETX_EXTENSION_TYPE, read_netx, write_netx
from silif_deploy.converters.quantize import quantize
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.profile import load_profile
from silif_deploy.hw_models.simulator import simulate

# what slayer's CUBA Dense block writes (loihi_lava.md §7), bias included
NETX_DENSE_KEYS = {"type", "shape", "weight", "bias", "neuron"}
NETX_CUBA_NEURON_KEYS = {"type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike"}


@pytest.fixture(params=["silif", "csilif"])
def network(request):
    rng = np.random.default_rng(3)
    net = float_network(rng, request.param, [7, 9, 8], 5)
    net.hidden[0].weight *= 4.0
    return quantize(net, load_profile("loihi2"), state_ranges=[2.0, 2.0], readout_range=4.0, netx=True)


def test_layout_follows_netx(network, tmp_path) -> None:
    path = tmp_path / "net.netx.h5"
    write_netx(network, path)
    with h5py.File(path, "r") as f:
        assert sorted(f["layer"], key=int) == ["0", "1", "2", "3"]
        assert f["layer/0/type"].dtype == np.dtype("S10") and f["layer/0/type"][0] == b"input"
        assert list(f["layer/0/shape"][()]) == [7]
        readout = f["layer/3"]
        assert set(readout) == NETX_DENSE_KEYS
        assert set(readout["neuron"]) == NETX_CUBA_NEURON_KEYS
        assert readout["type"].shape == (1,) and readout["type"][0] == b"dense"
        assert readout["neuron/type"][()] == b"CUBA"
        p = network.readout.params
        # netx builds LIF(du = iDecay − 1, dv = vDecay, vth = vThMant, bias_mant = bias, bias_exp = 6)
        np.testing.assert_array_equal(np.broadcast_to(readout["neuron/iDecay"][()], (5,)) - 1, p.du)
        np.testing.assert_array_equal(np.broadcast_to(readout["neuron/vDecay"][()], (5,)), p.dv)
        assert readout["neuron/vThMant"][()] == p.vth
        np.testing.assert_array_equal(readout["bias"][()] * 64, [m << e if e >= 0 else m >> -e for m, e in zip(p.bias_mant, p.bias_exp)])
        syn = network.readout.synapse
        np.testing.assert_array_equal(readout["weight"][()], syn.weights * 2.0**syn.weight_exp)
        for i in (1, 2):
            assert f[f"layer/{i}/neuron/type"][()].decode() == NETX_EXTENSION_TYPE
            assert f[f"layer/{i}/neuron/kind"][()].decode() == network.hidden[i - 1].kind


def test_file_holds_the_network_exactly(network, tmp_path) -> None:
    path = tmp_path / "net.netx.h5"
    write_netx(network, path)
    back = read_netx(path)
    x = np.random.default_rng(0).poisson(1.0, (2, 15, 7)).astype(np.float32)
    want, got = simulate(network, x), simulate(back, x)
    assert sum(int(s.sum()) for s in want.spikes) > 0
    for a, b in zip(got.spikes, want.spikes):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got.readout_u, want.readout_u)


def test_refuses_a_readout_netx_cannot_express(network, tmp_path) -> None:
    network.readout = dataclasses.replace(network.readout, params=network.readout.params._replace(half=1 << 31))
    with pytest.raises(SilifDeployError, match="netx CUBA"):
        write_netx(network, tmp_path / "net.netx.h5")
    assert not (tmp_path / "net.netx.h5").exists()


def test_inspect_says_which_layers_netx_loads(network, tmp_path, capsys) -> None:
    from silif_deploy.deploy.cli import main

    path = tmp_path / "net.netx.h5"
    write_netx(network, path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "netx file, format silif-deploy-netx v2" in out
    assert "layer 3 (readout): loads, runs bit for bit as our simulator" in out
    assert f"layer 1 (L0): cannot load: our {network.hidden[0].kind} neuron" in out


def test_version_1_files_still_read(network, tmp_path) -> None:
    """Version 1 wrote weights as W·2^weight_exp and the readout bias divided by 2^6."""
    import json

    path = tmp_path / "net.netx.h5"
    write_netx(network, path)
    with h5py.File(path, "r+") as f:
        meta = json.loads(f.attrs["silif_deploy"])
        for i, layer in enumerate(meta["layers"], start=1):
            w = f[f"layer/{i}/weight"][()] * 2.0 ** layer["weight_exp"]
            del f[f"layer/{i}/weight"]
            f[f"layer/{i}"].create_dataset("weight", data=w)
        meta["format_version"] = 1
        f.attrs["silif_deploy"] = json.dumps(meta)
    back = read_netx(path)
    for a, b in zip(back.layers, network.layers):
        np.testing.assert_array_equal(a.synapse.weights, b.synapse.weights)
