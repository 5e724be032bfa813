"""A failing process model ends the run with an error instead of hanging the Lava runtime, and the
runtime's processes are stopped; Lava can be used after the simulator in one process."""

import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lava")

from lava.magma.runtime.message_infrastructure.multiprocessing import SystemProcess  # noqa: E402

from silif_deploy.converters.lava_backend import network as lava_network  # noqa: E402
from silif_deploy.converters.lava_backend.runner import run_sample  # noqa: E402
from silif_deploy.errors import SilifDeployError  # noqa: E402
from silif_deploy.hw_models.dense import DenseSynapse  # noqa: E402
from silif_deploy.hw_models.network import FixedLayer, FixedPointNetwork  # noqa: E402
from silif_deploy.hw_models.neuron_cuba import CubaParams  # noqa: E402
from silif_deploy.hw_models.profile import load_profile  # noqa: E402

pytestmark = [pytest.mark.lava, pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore:stopping the Lava runtime")]


def test_failing_process_model_raises(monkeypatch) -> None:
    one = np.ones(2, np.int64)
    readout = FixedLayer("cuba", DenseSynapse(2 * np.ones((2, 2), np.int64), 0, 8, False),
                         CubaParams(4095 * one, 0 * one, 0 * one, 0 * one, 100, 6, 6, 1 << 23), 1)
    hidden = FixedLayer("silif", DenseSynapse(2 * np.ones((2, 3), np.int64), 0, 8, True), None, 1)  # no params
    network = FixedPointNetwork.chain("silif", 3, [hidden], readout, 0, load_profile("loihi2"))
    assert_run_ends_and_stops_lava(monkeypatch, network, np.ones((3, 4), np.int64))


def assert_run_ends_and_stops_lava(monkeypatch, network: FixedPointNetwork, x: np.ndarray) -> None:
    """``network``, whose process model fails inside Lava, ends within the watchdog's bounds on ``x``
    and leaves no runtime process behind."""
    monkeypatch.setattr(lava_network, "_warm_up", lambda *args: None)  # let the failure happen inside Lava
    started = time.perf_counter()
    # Lava either reports the failure (RuntimeError) or hangs until our watchdog fires
    with pytest.raises((SilifDeployError, RuntimeError)):
        run_sample(network, x, timeout_s=5)
    assert time.perf_counter() - started < 40
    assert not [p for p in multiprocessing.active_children() if isinstance(p, SystemProcess)]


def test_lava_after_the_simulator_in_one_process() -> None:
    """numba's parallel threads fix multiprocessing's start method, which made Lava's import raise
    ('context has already been set'): simulate first, then build and run on Lava, in a fresh process."""
    script = """
import numpy as np
from random_networks import float_network
from silif_deploy.converters.quantize import quantize
from silif_deploy.hw_models.profile import load_profile
from silif_deploy.hw_models.simulator import simulate
network = quantize(float_network(np.random.default_rng(0), "silif", [3, 4], 2), load_profile("loihi2"))
x = np.ones((1, 5, 3))
want = simulate(network, x).readout_u
from silif_deploy.converters.lava_backend.runner import run_lava
np.testing.assert_array_equal(run_lava(network, x, timeout_s=60).readout_u, want)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=100,
                          cwd=Path(__file__).parent)
    assert done.returncode == 0, done.stderr[-2000:]
