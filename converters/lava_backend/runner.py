"""Run a fixed-point network on Lava (``Loihi2SimCfg(select_tag="fixed_pt")``), one sample at a time.

Every run is under a watchdog (an exception inside a Lava process model hangs the runtime without a
traceback) and ``stop()`` is always called. Results are read once per sample after the run:
``Var.get`` costs ≈15 µs per value, so hidden spikes come packed 48 to a value (``SpikeRecorder``).
"""


import multiprocessing
import signal
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from tqdm import tqdm

from silif_deploy.converters.lava_backend.network import LavaNetwork, hidden_stages, to_lava
from silif_deploy.converters.lava_backend.processes import (
    AddValues, FixedPointNeurons, GluValues, GradedDense, PyAddValuesModel, PyFixedPointNeuronsModel, PyGluValuesModel,
    PyGradedDenseModel, PySpikeRecorderModel, PyValueRecorderModel, SpikeRecorder, ValueRecorder, unpack_spikes,
)
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.network import FixedPointNetwork, MeanLinear, neuron_count
from silif_deploy.hw_models.neuron_kinds import KINDS
from silif_deploy.hw_models.run_result import RunResult
from silif_deploy.hw_models.simulator import mean_linear, softmax_sum

OUR_MODELS = {FixedPointNeurons: PyFixedPointNeuronsModel, SpikeRecorder: PySpikeRecorderModel, AddValues: PyAddValuesModel,
              GradedDense: PyGradedDenseModel, GluValues: PyGluValuesModel, ValueRecorder: PyValueRecorderModel}
"""Our processes' ``fixed_pt`` models, named in the run config: this skips Lava's discovery, which
would execute every file in this folder per build."""


@dataclass
class SampleRun:
    """One sample's unaligned Lava outputs over all ``n_steps`` steps, and where the time went."""

    spikes: list[np.ndarray]                 # per hidden neuron stage (n_steps, N) uint8 (zeros: it sends states)
    readout_v: np.ndarray | None             # (n_steps, classes) int64, for a softmax readout
    final_states: dict[str, np.ndarray]      # "<state>_<l>" (N,) int64, when asked for
    traces: dict[str, np.ndarray] = field(default_factory=dict)  # "<state>_<l>" (n_steps, N), graphs only
    decoded: np.ndarray | None = None        # (n_steps, H) int64: the values a host decoder reads
    seconds: dict[str, float] = field(default_factory=dict)  # build, compile (first step), run, read


@contextmanager
def watchdog(timeout_s: float, what: str) -> Iterator[None]:
    """Raise SilifDeployError if the block runs longer than ``timeout_s``, and again every
    ``timeout_s`` after (Lava's own cleanup can swallow one and block again). Main thread only
    (SIGALRM); an outer timer (e.g. pytest-timeout's) is restored with what it had left."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise SilifDeployError(f"{what} did not finish within {timeout_s:.0f} s (a Lava process model may have "
                               "failed; Lava hangs instead of reporting it); run with --engine fixed to compare")

    previous = signal.signal(signal.SIGALRM, expired)
    outer_left, outer_interval = signal.setitimer(signal.ITIMER_REAL, timeout_s, timeout_s)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left > 0:
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - started), 1e-3), outer_interval)


def run_sample(network: FixedPointNetwork, x_int: np.ndarray, timeout_s: float = 600,
               final_states: bool = False) -> SampleRun:
    """Build and run one sample: ``x_int`` (channels, T) integer payloads, for T + delay steps.
    ``final_states``: each hidden stage's states after the last step, and (a graph that is not a
    chain) after every step."""
    t0 = time.perf_counter()
    lava = to_lava(network, x_int, record_states=final_states and not network.is_chain)
    t1 = time.perf_counter()
    runner = lava.processes[0]
    cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=OUR_MODELS)
    try:
        with watchdog(timeout_s, "the Lava run"):
            runner.run(condition=RunSteps(num_steps=1), run_cfg=cfg)  # compiles, then one step
            t2 = time.perf_counter()
            if lava.n_steps > 1:
                runner.run(condition=RunSteps(num_steps=lava.n_steps - 1), run_cfg=cfg)
            t3 = time.perf_counter()
            result = _read(network, lava, final_states)
            t4 = time.perf_counter()
    finally:
        _stop(runner, min(20.0, timeout_s))
    result.seconds = {"build": t1 - t0, "compile": t2 - t1, "run": t3 - t2, "read": t4 - t3,
                      "steps": lava.n_steps - 1}
    return result


def _stop(runner, timeout_s: float = 20) -> None:
    """Stop the runtime. After a process model failed, Lava's stop() waits forever for it: then
    terminate the runtime's own OS processes, and warn rather than mask the run's error."""
    try:
        with watchdog(timeout_s, "stopping the Lava runtime"):
            runner.stop()
    except SilifDeployError as error:
        # Lava 0.10 exposes its OS processes only through the runtime's messaging infrastructure
        actors = [a for a in runner.runtime._messaging_infrastructure.actors if _alive(a)]
        for actor in actors:
            actor.terminate()
        for actor in actors:
            multiprocessing.Process.join(actor, 5)  # the base join: Lava's own takes no timeout
            if _alive(actor):
                actor.kill()
                multiprocessing.Process.join(actor, 5)
        warnings.warn(f"{error}; its processes were terminated", RuntimeWarning, stacklevel=2)


def _alive(process: multiprocessing.Process) -> bool:
    """Lava closes the processes it managed to join; a closed one is no longer running."""
    try:
        return process.is_alive()
    except ValueError:
        return False


def _read(network: FixedPointNetwork, lava: LavaNetwork, final_states: bool) -> SampleRun:
    spikes, states, traces = [], {}, {}
    chain = network.is_chain  # a graph's hidden stages record their states after every step
    for l, (stage, recorder, neurons) in enumerate(zip(hidden_stages(network), lava.recorders, lava.hidden)):
        n, names = neuron_count(stage, 0), KINDS[stage.kind].states
        spikes.append(np.zeros((lava.n_steps, n), np.uint8) if recorder is None
                      else unpack_spikes(recorder.packed.get(), lava.n_steps, n))
        if final_states:
            x = np.asarray(neurons.x.get()).astype(np.int64).reshape(-1, n)
            states.update({f"{name}_{l}": row for name, row in zip(names, x)})
            if not chain:
                trace = np.asarray(neurons.trace.get()).astype(np.int64).reshape(lava.n_steps, len(names), n)
                traces.update({f"{name}_{l}": trace[:, j] for j, name in enumerate(names)})
    v = None
    if lava.readout:
        v = np.zeros((lava.n_steps, network.n_classes), np.int64)
        for group in lava.readout:
            data = group.monitor.get_data()[group.lif.name]["v"]
            v[:, group.classes] = np.asarray(data).reshape(lava.n_steps, -1).astype(np.int64)
    decoded = None if lava.decoder is None else np.asarray(lava.decoder.values.get()).astype(np.int64)
    return SampleRun(spikes, v, states, traces, decoded)


def run_lava(network: FixedPointNetwork, x: np.ndarray, timeout_s: float = 600,
             record_states: bool = False) -> RunResult:
    """Run (batch, T, channels) inputs on Lava; outputs aligned as :func:`~silif_deploy.hw_models.
    simulator.simulate` aligns them. ``record_states`` adds each hidden stage's state after the
    last step, ``<state>_<l>_final`` (batch, N), and: for a softmax readout ``v_readout`` (batch,
    T, classes); for a graph that is not a chain every hidden stage's trajectory ``<state>_<l>``
    (batch, T, N), as the simulator records them."""
    n_steps = x.shape[1]
    payloads = network.quantize_input(x)
    runs = [run_sample(network, payloads[b].T, timeout_s, final_states=record_states)
            for b in tqdm(range(len(x)), desc="lava", unit="sample", disable=len(x) < 2)]
    spikes, states = [], {}
    delays = network.delays()
    for l, stage in enumerate(hidden_stages(network)):
        window = slice(delays[stage.name], delays[stage.name] + n_steps)  # start_index(l) in a chain
        spikes.append(np.stack([r.spikes[l][window] for r in runs]).astype(bool))
        for key in (f"{name}_{l}" for name in KINDS[stage.kind].states):
            if key in runs[0].traces:
                states[key] = np.stack([r.traces[key][window] for r in runs])
    aligned = slice(network.delay, network.delay + n_steps)
    last = network.stages[-1]
    if isinstance(last, MeanLinear):
        readout_u, scores = mean_linear(last, np.stack([r.decoded[aligned] for r in runs]))
    else:
        v = np.stack([r.readout_v[aligned] for r in runs])
        readout_u = v / float(network.readout.scale)
        scores = softmax_sum(readout_u)
        states["v_readout"] = v
    if record_states:
        for key in runs[0].final_states:
            states[f"{key}_final"] = np.stack([r.final_states[key] for r in runs])
    return RunResult(scores=scores, spikes=spikes, readout_u=readout_u, states=states if record_states else None)
