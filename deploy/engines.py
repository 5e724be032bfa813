"""Open any model source (checkpoint, NIR file, fixed-point artifact) and run it on one engine.

Engines: ``float`` (the PyTorch model: the float side's truth), ``fixed`` (our bit-accurate
integer simulator) and ``lava`` (Lava processes, in the Python 3.10 Lava environment). All return
a :class:`~silif_deploy.hw_models.run_result.RunResult` with the same keys.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from silif_deploy.converters.files import require_file
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.run_result import RunResult

ENGINES = ("float", "fixed", "lava")
ARTIFACT_SUFFIX = ".loihi2.h5"


def source_kind(path: str | os.PathLike) -> str:
    """``checkpoint``, ``nir`` or ``artifact``, from the file name."""
    name = Path(path).name.lower()
    if name.endswith(".nir"):
        return "nir"
    if name.endswith(".h5") or name.endswith(".hdf5"):
        return "artifact"
    if name.endswith((".pt", ".pth", ".ckpt")):
        return "checkpoint"
    raise SilifDeployError(
        f"'{path}': unknown model file type; give a checkpoint (.pt/.pth), a NIR file (.nir) "
        f"or a fixed-point artifact ({ARTIFACT_SUFFIX})"
    )


def default_engine(path: str | os.PathLike) -> str:
    return "fixed" if source_kind(path) == "artifact" else "float"


def load_float_model(path: str | os.PathLike, model_type: str | None = None, init_state: str = "zeros"):
    """The float PyTorch model behind any source (an artifact remembers the float network it came from)."""
    require_file(path, "model")
    kind = source_kind(path)
    if kind == "checkpoint":
        from silif_deploy.converters.checkpoint import load_model

        return load_model(path, model_type=model_type, init_state=init_state)
    if kind == "nir":
        from silif_deploy.converters.nir_import import model_from_nir_file

        return model_from_nir_file(path)
    from silif_deploy.converters.artifact import float_model_from_artifact

    return float_model_from_artifact(path)


def run_engine(
    path: str | os.PathLike,
    x: np.ndarray,
    engine: str | None = None,
    model_type: str | None = None,
    record_states: bool = False,
    batch_size: int = 256,
) -> RunResult:
    """Run ``x`` (batch, time, channels) through the model in ``path`` on ``engine``."""
    engine = engine or default_engine(path)
    if engine not in ENGINES:
        raise SilifDeployError(f"unknown engine '{engine}'; choose one of: {', '.join(ENGINES)}")
    if engine == "float" and source_kind(path) == "nir":
        lossy = _lif_compat_run(path, x)
        if lossy is not None:
            return lossy
    if engine == "float":
        model = load_float_model(path, model_type=model_type)
        _check_channels(x, model.config.n_inputs)
        parts = [model.run(x[i : i + batch_size], record_states=record_states) for i in range(0, len(x), batch_size)]
        return RunResult.concatenate(parts)
    if source_kind(path) != "artifact":
        raise SilifDeployError(
            f"engine '{engine}' runs a fixed-point artifact; make one first: silif-deploy export {path} --target loihi2"
        )
    from silif_deploy.converters.artifact import read_artifact

    network = read_artifact(path)
    _check_channels(x, network.n_inputs)
    if network.input_frac_bits == 0:
        _check_counts(x, (1 << network.profile.input_message_bits) - 1)
    if engine == "fixed":
        from silif_deploy.hw_models.simulator import simulate

        return simulate(network, x, record_states=record_states, batch_size=batch_size)
    from silif_deploy.converters.lava_backend import require_lava

    require_lava()
    from silif_deploy.converters.lava_backend.runner import run_lava

    return run_lava(network, x, record_states=record_states)


def _lif_compat_run(path: str | os.PathLike, x: np.ndarray) -> RunResult | None:
    """A lif-compat NIR file runs as snntorch reads it, labelled lossy on stderr; else None."""
    import sys

    from silif_deploy.converters.nir_import import read_nir
    from silif_deploy.converters.nir_lif_compat import LOSSY_LABEL, is_lif_compat, run_lif_compat

    graph = read_nir(path)
    if not is_lif_compat(graph):
        return None
    _check_channels(x, int(next(n for n in graph.nodes.values() if type(n).__name__ == "Input").output_type["output"][0]))
    print(f"note: '{path}': {LOSSY_LABEL}", file=sys.stderr)
    return run_lif_compat(graph, x)


def _check_channels(x: np.ndarray, n_inputs: int) -> None:
    if x.shape[-1] != n_inputs:
        raise SilifDeployError(f"input has {x.shape[-1]} channels, the model expects {n_inputs}")


def _check_counts(x: np.ndarray, limit: int) -> None:
    """An artifact quantized for event counts (input_frac_bits 0) sends its input as it is: refuse
    values that are not counts, or counts its payload cannot carry, rather than round or clip them silently."""
    if x.size and (np.min(x) < 0 or not np.array_equal(x, np.floor(x))):
        raise SilifDeployError(
            "input holds negative or fractional values, but this artifact takes event counts (non-negative "
            "integers); fix the input, or re-export with --calibrate on real-valued data"
        )
    if x.size and np.max(x) > limit:
        raise SilifDeployError(
            f"input holds counts up to {np.max(x):.6g}, but this artifact's input payload carries at most {limit} "
            "per step and channel; bin the events more finely or re-export with a wider input_message_bits"
        )
