"""lava-dl's own netx reader loads our ``--target netx`` files and Lava runs them bit for bit as
our simulator, on the layers netx can express (Lava environment, lava-dl 0.6.0).

What each test proves:

* ``test_lif_network``: a whole network of Lava CUBA LIF layers (hidden layers that spike, biases,
  per-layer decays; binary spikes or event counts as graded input, ``input_message_bits``) written
  by ``write_netx``, loaded by ``netx.hdf5.Network`` (its own
  ``NetDict``, ``optimize_weight_bits``, CUBA → ``LIFReset``), run under ``fixed_pt``: every hidden
  spike and every readout ``v`` equals ``simulate`` on the network that was written.
* ``test_shipped_model_readout``: the shipped synthetic-digit SiLIF / C-SiLIF models exported by
  ``export --target netx`` (``tests/test_lava_fixtures.py``): netx cannot load our hidden neurons
  (the ``SILIF_FXP`` extension: its ``Network`` builds every layer, skipped ones too, and fails on
  them), so export also writes the readout alone (``<name>.readout.netx.h5``, its layer group
  identical to the full file's); netx loads it, driven with our simulator's last hidden spikes,
  and its ``v`` equals ours.

netx's reader is imported without torch (``netx_reader.py`` says exactly what stands in).
netx's own reset (``reset_interval``/``reset_offset=1``) zeroes each layer at the step its first
input arrives, which is our simulator's start state.
"""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lava")
if __import__("importlib.util").util.find_spec("lava.lib.dl") is None:
    pytest.skip("lava-dl is not installed (make lava-env installs lava-dl==0.6.0 --no-deps)", allow_module_level=True)

from silif_deploy.converters.lava_backend import allow_lava_import  # noqa: E402

allow_lava_import()

from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.io.sink import RingBuffer as SinkRingBuffer  # noqa: E402
from lava.proc.io.source import RingBuffer  # noqa: E402
from lava.proc.monitor.process import Monitor  # noqa: E402

from netx_reader import import_netx  # noqa: E402
from silif_deploy.converters.lava_backend.runner import watchdog  # noqa: E402
from silif_deploy.converters.netx_export import netx_problems, read_netx, write_netx  # noqa: E402
from silif_deploy.hw_models.dense import DenseSynapse  # noqa: E402
from silif_deploy.hw_models.network import FixedLayer, FixedPointNetwork  # noqa: E402
from silif_deploy.hw_models.neuron_cuba import CubaParams  # noqa: E402
from silif_deploy.hw_models.profile import load_profile  # noqa: E402
from silif_deploy.hw_models.simulator import simulate  # noqa: E402

pytestmark = [pytest.mark.lava, pytest.mark.timeout(300)]

ARTIFACTS = Path(__file__).parent / ".artifacts"
NETX = import_netx()


def run_netx(path: Path, x: np.ndarray, n_layers: int, input_message_bits: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Run one sample ``x`` (T, channels) of spikes (graded payloads with ``input_message_bits``)
    through netx's Network for T + n_layers steps; returns each layer's spikes (steps, N) and the
    last layer's v (steps, N)."""
    n_steps = x.shape[0] + n_layers
    # one reset, at the step each layer's first input arrives (netx adds the layer index)
    net = NETX.hdf5.Network(str(path), reset_interval=n_steps + 8, reset_offset=1, input_message_bits=input_message_bits)
    source = RingBuffer(data=np.concatenate([x.T, np.zeros((x.shape[1], n_layers))], axis=1))
    source.s_out.connect(net.inp)
    sinks = []
    for block in net.layers:
        sink = SinkRingBuffer(shape=block.neuron.s_out.shape, buffer=n_steps)
        block.neuron.s_out.connect(sink.a_in)
        sinks.append(sink)
    monitor = Monitor()
    monitor.probe(net.layers[-1].neuron.v, n_steps)
    cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=NETX.model_map(net))
    try:
        with watchdog(240, "the netx run"):
            source.run(condition=RunSteps(num_steps=n_steps), run_cfg=cfg)
            spikes = [s.data.get().T.astype(np.int64) for s in sinks]
            v = np.asarray(monitor.get_data()[net.layers[-1].neuron.name]["v"]).reshape(n_steps, -1).astype(np.int64)
    finally:
        source.stop()
    return spikes, v


def same_group(a, b) -> bool:
    """Two HDF5 groups hold the same datasets with the same values."""
    import h5py

    if set(a) != set(b):
        return False
    return all(same_group(a[k], b[k]) if isinstance(a[k], h5py.Group) else np.array_equal(a[k][()], b[k][()])
               for k in a)


def cuba_layer(rng: np.random.Generator, n_in: int, n: int, du: int, dv: int, vth: int, graded: bool = False) -> FixedLayer:
    w = 2 * rng.integers(-128, 128, (n, n_in))
    params = CubaParams(du=np.full(n, du), dv=np.full(n, dv), bias_mant=rng.integers(-40, 60, n),
                        bias_exp=np.full(n, 6), vth=vth, input_shift=6, threshold_exponent=6, half=1 << 23)
    return FixedLayer("cuba", DenseSynapse(w.astype(np.int64), 0, 8, graded), params, 1 << 12)


@pytest.mark.parametrize("graded", [False, True], ids=["spikes", "event-counts"])
def test_lif_network(tmp_path, graded) -> None:
    rng = np.random.default_rng(5)
    vth = 1500 if graded else 400
    hidden = [cuba_layer(rng, 16, 24, 1000, 300, vth, graded), cuba_layer(rng, 24, 20, 2000, 100, 600)]
    readout = cuba_layer(rng, 20, 6, 4095, 500, (1 << 17) - 1)
    network = FixedPointNetwork.chain("lif-cuba", 16, hidden, readout, 0, load_profile("loihi2"))
    assert all(not netx_problems(layer) for layer in network.layers)
    path = tmp_path / "lif.netx.h5"
    write_netx(network, path)
    x = (rng.random((1, 30, 16)) < 0.3).astype(np.float32)
    if graded:  # event counts, sent as graded payloads (netx: input_message_bits on the first synapse)
        x *= rng.integers(1, 4, x.shape)
    want = simulate(read_netx(path), x)
    bits = network.profile.input_message_bits if graded else 0
    spikes, v = run_netx(path, x[0], n_layers=3, input_message_bits=bits)
    for l, layer_spikes in enumerate(want.spikes):  # layer l answers frame k at Lava step k + 2 + l
        assert layer_spikes.sum() > 20
        np.testing.assert_array_equal(spikes[l][1 + l : 1 + l + 30], layer_spikes[0])
    np.testing.assert_array_equal(v[3:33] / readout.scale, want.readout_u[0])  # readout_u = v / scale, exact


@pytest.mark.parametrize("model", ["silif", "csilif"])
def test_shipped_model_readout(model: str) -> None:
    import h5py

    path, inputs = ARTIFACTS / f"synth_{model}.netx.h5", ARTIFACTS / f"synth_{model}_netx_input.npy"
    readout = ARTIFACTS / f"synth_{model}.readout.netx.h5"
    if not path.exists() or not inputs.exists() or not readout.exists():
        pytest.fail(f"{path} is missing: run tests/test_lava_fixtures.py in the main environment first (make lava-fixtures)")
    network = read_netx(path)
    problems = [netx_problems(layer) for layer in network.layers]
    assert all(problems[:-1]) and not problems[-1]  # hidden: our extension; readout: netx CUBA
    x = np.load(inputs)
    want = simulate(network, x)
    with h5py.File(path, "r") as full, h5py.File(readout, "r") as alone:
        assert same_group(full[f"layer/{len(network.layers)}"], alone["layer/1"])  # the very readout of the full file
    for b in range(len(x)):
        _, v = run_netx(readout, want.spikes[-1][b].astype(np.float32), n_layers=1)
        np.testing.assert_array_equal(v[1 : 1 + x.shape[1]] / network.readout.scale, want.readout_u[b])
