"""Open any model source (checkpoint, NIR file, fixed-point artifact) and run it on one engine.

Engines: ``float`` (the PyTorch model: the float side's truth), ``fixed`` (our bit-accurate
integer simulator) and ``lava`` (Lava processes, in the Python 3.10 Lava environment). All return
a :class:`~silif_deploy.hw_models.run_result.RunResult` with the same keys.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from silif_deploy.converters.files import require_file
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.run_result import RunResult

if TYPE_CHECKING:  # the simulator's modules import numba: only the fixed and Lava engines need it
    from silif_deploy.hw_models.network import FixedPointNetwork

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


def model_name(source: Path) -> str:
    """A model file's name without its type suffix, for the files made from it:
    ``ssc_silif_2x512.pth`` → ``ssc_silif_2x512``, ``ssc_silif_2x512.loihi2.h5`` → ``ssc_silif_2x512``."""
    name = source.name
    return name[: -len(ARTIFACT_SUFFIX)] if name.lower().endswith(ARTIFACT_SUFFIX) else source.stem


def default_engine(path: str | os.PathLike) -> str:
    return "fixed" if source_kind(path) == "artifact" else "float"


def load_float_model(
    path: str | os.PathLike, model_type: str | None = None, init_state: str = "zeros",
    neuron: str | None = None, prenorm: bool | None = None, for_fixed_point: str | None = None,
    deployed_by: str | None = None,
):
    """The float PyTorch model behind any source (an artifact remembers the float network it came from).
    ``neuron`` and ``prenorm`` are SpikingSSM options (:func:`float_model_options`). ``for_fixed_point``:
    the command that will quantize the model; a SpikingSSM configuration fixed point cannot run
    (bidirectional, pre-norm LayerNorm, ``--neuron sdn``) is then refused in one line.
    ``deployed_by`` (implied by ``for_fixed_point``): the command writes a deployment format; a
    checkpoint trained through the SDN is then read with the exact LIF, which is what is deployed
    (the authors' own deployment), unless ``neuron`` asks otherwise."""
    deployed_by = deployed_by or for_fixed_point
    deploy = deployed_by is not None and neuron is None
    model = _load_float_model(path, model_type, init_state, neuron, prenorm, deploy)
    if deploy and getattr(model, "trained_neuron", None) == "sdn":
        import sys

        print(f"note: '{path}' was trained through the SDN surrogate; {deployed_by} deploys the exact LIF "
              "(its float side: --neuron lif)", file=sys.stderr)
    if for_fixed_point is not None and is_spiking_ssm(model):
        from silif_deploy.converters.families.spiking_ssm import require_fixed_point

        require_fixed_point(model.config, f"'{path}' for {for_fixed_point}")
        if for_fixed_point in UNCALIBRATED_COMMANDS:
            raise SilifDeployError(f"'{path}' for {for_fixed_point}: a {model.config.family} network's fixed-point scales "
                                   f"come from a float pass over its input, which {for_fixed_point} does not make: export "
                                   "it with --target loihi2 --calibrate INPUT under each --profile instead")
    return model


UNCALIBRATED_COMMANDS = ("sweep",)
"""Commands that quantize checkpoints weights-only (no calibration pass): SpikingSSM models need one."""


def _load_float_model(path, model_type, init_state, neuron, prenorm, deploy):
    require_file(path, "model")
    kind = source_kind(path)
    if kind == "checkpoint":
        from silif_deploy.converters.checkpoint import load_model

        return load_model(path, model_type=model_type, init_state=init_state, neuron=neuron, prenorm=prenorm,
                          deploy=deploy)
    if neuron not in (None, "lif") or prenorm is not None:
        raise SilifDeployError(f"'{path}': --neuron and --norm-placement choose how a SpikingSSM checkpoint is read; "
                               "a NIR file or an artifact already says it (its neuron is the exact LIF)")
    if kind == "nir":
        from silif_deploy.converters.nir_import import model_from_nir_file

        return model_from_nir_file(path)
    from silif_deploy.converters.artifact import float_model_from_artifact

    return float_model_from_artifact(path)


def add_float_model_arguments(p) -> None:
    """The options of the commands that build the float model from a SpikingSSM checkpoint."""
    p.add_argument("--neuron", choices=("lif", "sdn"), default=None,
                   help="SpikingSSM checkpoints: lif (default: the exact LIF, what export deploys) or sdn (the "
                        "authors' surrogate dynamic network: reproduces their numbers)")
    p.add_argument("--norm-placement", choices=("pre", "post"), default=None,
                   help="SpikingSSM checkpoints in the authors' flat layout, which do not record it: pre (pre-norm "
                        "BatchNorm) or post (the authors' post-norm, whose norms never act)")


def float_model_options(args) -> dict:
    """``neuron`` and ``prenorm`` for :func:`load_float_model` from :func:`add_float_model_arguments`'s options."""
    placement = getattr(args, "norm_placement", None)
    return {"neuron": getattr(args, "neuron", None), "prenorm": None if placement is None else placement == "pre"}


def is_spiking_ssm(model) -> bool:
    """Whether ``model`` is a SpikingSSM / binary-S4D float model (a whole network, quantized by
    :mod:`~silif_deploy.converters.families.spiking_ssm_quantize`)."""
    from silif_deploy.converters.families.spiking_ssm import SpikingSSMNet

    return isinstance(model, SpikingSSMNet)


def _refuse_spiking_ssm_fixed_point(path: str | os.PathLike, engine: str) -> None:
    """One line when a checkpoint or NIR file holds a SpikingSSM that fixed point can never run
    (bidirectional, pre-norm LayerNorm), before the caller's "make an artifact first"."""
    kind = source_kind(path)
    try:
        if kind == "checkpoint":
            from silif_deploy.converters.checkpoint import load_weights
            from silif_deploy.converters.families.spiking_ssm import detect_checkpoint, peek_config

            found = detect_checkpoint(load_weights(path)[1])
            config = None if found is None else peek_config(found)
        else:
            from silif_deploy.converters.nir_import import model_from_nir_file

            model = model_from_nir_file(path)
            config = model.config if is_spiking_ssm(model) else None
    except SilifDeployError:
        return  # not readable as a SpikingSSM: the caller's own message follows
    if config is not None:
        from silif_deploy.converters.families.spiking_ssm import require_fixed_point

        require_fixed_point(config, f"'{path}' on engine '{engine}'")


def _mean_linear() -> type:
    """The decoder stage type, imported lazily (the network module loads numba, which the float engine skips)."""
    from silif_deploy.hw_models.network import MeanLinear

    return MeanLinear


def recorded_sizes(network: FixedPointNetwork) -> list[int]:
    """The sizes of a fixed-point run's ``spikes`` entries: a chain's hidden layers; every neuron stage of
    a graph with a mean_linear decoder (SpikingSSM: each block's s4d states, which send states and never
    spike, then its soma), in run order."""
    from silif_deploy.hw_models.network import neuron_count

    if isinstance(network.stages[-1], _mean_linear()):
        return [int(neuron_count(st)) for st in network.neuron_stages]
    return [layer.size for layer in network.hidden]


@dataclass
class Engine:
    """A model opened on one engine: ``run(x)`` runs one (batch, time, channels) batch.

    ``max_count``: set when the model takes event counts only (an artifact quantized for counts sends
    its input as it is): the largest count its input payload carries. Open the input with
    :func:`~silif_deploy.converters.datasets.open_input`'s ``n_channels=n_inputs, max_count=max_count``.
    """

    name: str
    n_inputs: int
    hidden_sizes: list[int]
    run: Callable[[np.ndarray], RunResult]
    network: FixedPointNetwork | None = None
    float_model: object | None = None
    max_count: int | None = None

    @property
    def layer_names(self) -> list[str]:
        """What each entry of a run's ``spikes`` is: a graph network's neuron stages by name and kind
        (an s4d stage sends its states, never spikes), else ``layer <i>``."""
        if self.network is None or not isinstance(self.network.stages[-1], _mean_linear()):
            return [f"layer {i}" for i in range(len(self.hidden_sizes))]
        return [f"stage {st.name} ({st.kind})" for st in self.network.neuron_stages]


def open_engine(
    path: str | os.PathLike,
    engine: str | None = None,
    model_type: str | None = None,
    record_states: bool = False,
    keep_spikes: bool = True,
    exact_for: str | None = None,
    neuron: str | None = None,
    prenorm: bool | None = None,
) -> Engine:
    """Open the model in ``path`` on ``engine`` (default: fixed for an artifact, float otherwise).
    ``keep_spikes=False`` lets the fixed engine skip the hidden spike rasters (``spikes`` is empty;
    ``diagnostics["spike_counts"]`` still counts them). ``exact_for``: what needs the exact model
    (an option, ``"--report"``): a lif-compat NIR file, which only runs lossily, is then refused.
    ``neuron``, ``prenorm``: :func:`float_model_options` (SpikingSSM checkpoints on the float engine)."""
    engine = engine or default_engine(path)
    if engine not in ENGINES:
        raise SilifDeployError(f"unknown engine '{engine}'; choose one of: {', '.join(ENGINES)}")
    if engine == "float" and source_kind(path) == "nir":
        lossy = _lif_compat_engine(path, exact_for)
        if lossy is not None:
            return lossy
    if engine == "float":
        model = load_float_model(path, model_type=model_type, neuron=neuron, prenorm=prenorm)
        return Engine("float", model.config.n_inputs, list(model.config.hidden_sizes),
                      lambda x: model.run(x, record_states=record_states), float_model=model)
    if source_kind(path) != "artifact":
        _refuse_spiking_ssm_fixed_point(path, engine)
        raise SilifDeployError(
            f"engine '{engine}' runs a fixed-point artifact; make one first: silif-deploy export {path} --target loihi2"
        )
    from silif_deploy.converters.artifact import read_artifact

    network = read_artifact(path)
    max_count = (1 << network.profile.input_message_bits) - 1 if network.input_frac_bits == 0 else None
    sizes = recorded_sizes(network)
    if engine == "fixed":
        from silif_deploy.hw_models.simulator import simulate

        return Engine("fixed", network.n_inputs, sizes,
                      lambda x: simulate(network, x, record_states=record_states, batch_size=len(x),
                                         keep_spikes=keep_spikes), network=network, max_count=max_count)
    from silif_deploy.converters.lava_backend import require_lava

    require_lava()
    from silif_deploy.converters.lava_backend.runner import run_lava

    return Engine("lava", network.n_inputs, sizes, lambda x: run_lava(network, x, record_states=record_states),
                  network=network, max_count=max_count)


def _lif_compat_engine(path: str | os.PathLike, exact_for: str | None) -> Engine | None:
    """A lif-compat NIR file runs as snntorch reads it, labelled lossy on stderr (refused when
    ``exact_for`` names what needs the exact model); else None."""
    import sys

    from silif_deploy.converters.nir_import import read_nir
    from silif_deploy.converters.nir_lif_compat import LOSSY_LABEL, is_lif_compat, layer_sizes, run_lif_compat

    graph = read_nir(path)
    if not is_lif_compat(graph):
        return None
    if exact_for is not None:
        raise SilifDeployError(f"{exact_for} needs the exact model, and '{path}' is a lif-compat NIR file, which runs "
                               f"only lossily: give the checkpoint, its exact .nir or its artifact, or drop {exact_for}")
    print(f"note: '{path}': {LOSSY_LABEL}", file=sys.stderr)
    n_inputs, *hidden, _ = layer_sizes(graph)
    return Engine("float-lif-compat", n_inputs, hidden, lambda x: run_lif_compat(graph, x))
