"""The one report builder: ``export``, ``report``, ``compare`` and ``simulate --report`` build their report here.

A report is one evaluation pass and one assembly:

* :func:`evaluate`: the engine's run and its float reference on each batch of the input
  (:func:`~silif_deploy.deploy.batching.batches`), tallied as they pass (:class:`Tallies`): the
  run's event counts, its fidelity against the float run, optionally the float run's own counts,
  and the first sample's trace for the plot;
* :func:`assemble`: the metrics of :func:`~silif_deploy.hw_models.metrics.build_report` with the
  provenance, hardware profile, model and quantization sections and, for a fixed-point network,
  the ``energy`` and ``mapping`` sections (:mod:`.energy_report`).

:func:`build_report` does both for a fixed-point network on an input; :func:`report_on_artifact`
is ``silif-deploy report``'s job (here or as Dask shards). The writers (JSON, Markdown, PNG) are in
:mod:`.reporting`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from silif_deploy.converters.datasets import InputSource
from silif_deploy.converters.files import provenance, sha256_file
from silif_deploy.converters.float_description import describe_float
from silif_deploy.deploy import energy_report
from silif_deploy.deploy.batching import BATCH_SIZE, batches
from silif_deploy.deploy.reporting import write_json
from silif_deploy.deploy.sharding import DEFAULT_SHARD_SIZE
from silif_deploy.hw_models import metrics
from silif_deploy.hw_models.network import FixedPointNetwork
from silif_deploy.hw_models.run_result import RunResult

if TYPE_CHECKING:
    from silif_deploy.deploy.engines import Engine


@dataclass
class SampleTrace:
    """One sample's outputs for the plot: hidden spikes (T, N) per layer and readout traces (T, K)."""

    spikes: list[np.ndarray]
    readout: np.ndarray
    readout_float: np.ndarray | None


@dataclass
class Evaluation:
    """A run (and optionally its float reference) tallied over a whole input."""

    tally: metrics.RunTally
    fidelity: metrics.FidelityTally | None
    trace: SampleTrace
    float_tally: metrics.RunTally | None = None
    """The float reference's own counts (``compare``'s float columns), when asked for."""


class Tallies:
    """The sums of an evaluation, added batch by batch (:meth:`add`), in batch order."""

    def __init__(self, description: metrics.NetworkDescription,
                 float_description: metrics.NetworkDescription | None = None):
        self.description, self.float_description = description, float_description
        self.tally: metrics.RunTally | None = None
        self.fidelity: metrics.FidelityTally | None = None
        self.float_tally: metrics.RunTally | None = None
        self.trace: SampleTrace | None = None

    def add(self, x: np.ndarray, out: RunResult, ref: RunResult | None, labels: np.ndarray | None) -> None:
        """Tally one batch ``x``: the run's outputs ``out`` and the float reference's ``ref`` (or None)."""
        self.tally = _add(self.tally, metrics.tally_run(self.description, x, out, labels))
        if ref is not None:
            graph = self.description if isinstance(self.description, metrics.GraphDescription) else None
            self.fidelity = _add(self.fidelity, metrics.tally_fidelity(out, ref, graph))
            if self.float_description is not None:
                self.float_tally = _add(self.float_tally, metrics.tally_run(self.float_description, x, ref, labels))
        if self.trace is None:
            spikes = out.spikes if not isinstance(self.description, metrics.GraphDescription) \
                else metrics.compared_spikes(self.description, out)  # the somas', not the S4D states' empty rasters
            self.trace = SampleTrace([s[0] for s in spikes], out.readout_u[0],
                                     None if ref is None else ref.readout_u[0])

    def evaluation(self) -> Evaluation:
        return Evaluation(self.tally, self.fidelity, self.trace, self.float_tally)  # type: ignore[arg-type]


def _add(total, part):
    return part if total is None else total + part


def evaluate(
    description: metrics.NetworkDescription,
    source: InputSource,
    run: Callable[[np.ndarray], RunResult],
    reference: Callable[[np.ndarray], RunResult] | None = None,
    desc: str | None = "evaluating",
    float_description: metrics.NetworkDescription | None = None,
    batch_size: int = BATCH_SIZE,
) -> Evaluation:
    """Run ``run`` (and ``reference``, the float model) over ``source`` in one pass and tally both
    (and the reference's own counts under ``float_description``, when given)."""
    tallies = Tallies(description, float_description)
    for xb, lb in batches(source, desc, batch_size):
        tallies.add(xb, run(xb), reference(xb) if reference is not None else None, lb)
    return tallies.evaluation()


def merge_evaluations(parts: list[Evaluation]) -> Evaluation:
    """One evaluation from those of consecutive shards, in order (tallies add up; the plotted trace
    is the first shard's)."""
    tally, fidelity = parts[0].tally, parts[0].fidelity
    for part in parts[1:]:
        tally = tally + part.tally
        fidelity = None if fidelity is None or part.fidelity is None else fidelity + part.fidelity
    return Evaluation(tally, fidelity, parts[0].trace)


# --------------------------------------------------------------------------------------------
# Sections.


def describe_float_model(model) -> metrics.NetworkDescription:
    """The description of a float PyTorch model (its config and parameters)."""
    return describe_float(model.config.to_dict(), {k: v.numpy() for k, v in model.state_dict().items()})


def artifact_float_model(network: FixedPointNetwork, artifact: str | os.PathLike):
    """The float model an artifact carries, for fidelity figures; None without PyTorch or a float model."""
    import importlib.util

    if network.float_model is None or importlib.util.find_spec("torch") is None:
        return None
    from silif_deploy.converters.artifact import float_model_from_artifact

    return float_model_from_artifact(artifact)


def profile_section(network: FixedPointNetwork) -> dict[str, Any]:
    return {**network.profile.to_dict(), "text": network.profile.source_text}


def artifact_provenance(network: FixedPointNetwork) -> dict[str, Any]:
    """The artifact's provenance record without the profile text (the report's ``profile`` has it)."""
    return {k: v for k, v in network.provenance.items() if k != "hardware_profile_text"}


def model_section(network: FixedPointNetwork, source: str | os.PathLike) -> dict[str, Any]:
    if not network.is_chain:  # a graph of stages: its spiking stages' sizes
        from silif_deploy.hw_models.network import neuron_count
        from silif_deploy.hw_models.neuron_kinds import KINDS, SPIKES

        return {"source": Path(source).name, "n_inputs": network.n_inputs, "stages": len(network.stages),
                "hidden_sizes": [neuron_count(s) for s in network.neuron_stages if KINDS[s.kind].output == SPIKES],
                "n_classes": network.n_classes}
    return {"source": Path(source).name, "n_inputs": network.n_inputs,
            "hidden_sizes": [layer.size for layer in network.hidden], "n_classes": network.n_classes}


def file_input(sha256: str | None, is_counts: bool, path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The report's ``input`` record of a data file (its path when given)."""
    return {"kind": "file", **({} if path is None else {"path": str(path)}), "sha256": sha256, "is_counts": is_counts}


# --------------------------------------------------------------------------------------------
# The report.


@dataclass
class BuiltReport:
    """A report (``silif-deploy/report``, ``docs/report.md``), the trace it plots, and the float
    reference's own report when it was asked for (``compare``)."""

    report: dict[str, Any]
    trace: SampleTrace
    float_report: dict[str, Any] | None = None


def assemble(
    description: metrics.NetworkDescription,
    evaluation: Evaluation,
    input_info: Mapping[str, Any],
    record: Mapping[str, Any],
    *,
    model: Mapping[str, Any],
    network: FixedPointNetwork | None = None,
    energy_profile: str | os.PathLike | None = None,
    energy: bool = True,
    float_desc: metrics.NetworkDescription | None = None,
) -> BuiltReport:
    """The report of an evaluation; ``record``: what its provenance names. With a fixed-point
    ``network``: its profile and quantization sections and (``energy``) the energy and mapping
    sections under ``energy_profile`` (the default when None); with ``float_desc`` (and the float
    counts in ``evaluation``), the float reference's own report too."""
    kwargs: dict[str, Any] = {}
    if network is not None:
        kwargs.update(profile=profile_section(network), quantization=network.quantization)
    report = metrics.build_report(description, evaluation.tally, input_info=input_info,
                                  provenance=provenance(**record), fidelity=evaluation.fidelity, model=model, **kwargs)
    if network is not None and energy:
        report = energy_report.add_energy_sections(report, network, energy_profile)  # energy + mapping (docs/energy.md)
    float_report = None
    if float_desc is not None and evaluation.float_tally is not None:
        float_report = metrics.build_report(float_desc, evaluation.float_tally, input_info=input_info,
                                            provenance=provenance(**record), model=model)
    return BuiltReport(report, evaluation.trace, float_report)


def build_report(
    network: FixedPointNetwork,
    source: InputSource | None,
    *,
    model_source: str | os.PathLike,
    float_model=None,
    input_info: Mapping[str, Any] | None = None,
    input_path: str | os.PathLike | None = None,
    artifact: str | os.PathLike | None = None,
    energy_profile: str | os.PathLike | None = None,
    float_counts: bool = False,
    evaluation: Evaluation | None = None,
    desc: str | None = None,
) -> BuiltReport:
    """The report of the fixed-point ``network`` on ``source``: one pass of the bit-accurate
    simulator and of ``float_model`` (the reference for the fidelity figures, when given) over the
    input, assembled with energy and mapping under ``energy_profile``.

    ``model_source``: the file the model came from (the report's ``model.source``); ``artifact``:
    the artifact file (hashed into the provenance); ``input_info``: the input record (default: the
    data file ``input_path``, from ``source``); ``float_counts``: also the float model's own report
    (``BuiltReport.float_report``); ``evaluation``: a pass already made (``report``'s Dask shards),
    then ``source`` is not read. The network must fit one chip of the energy profile: checked
    before the pass.
    """
    from silif_deploy.hw_models.energy_profile import load_energy_profile
    from silif_deploy.hw_models.simulator import simulate

    energy_report.chip_mapping(network, load_energy_profile(energy_profile))  # refuse before the run
    description = metrics.describe_fixed(network)
    float_desc = describe_float_model(float_model) if float_counts and float_model is not None else None
    if evaluation is None:
        evaluation = evaluate(description, source, lambda xb: simulate(network, xb),  # type: ignore[arg-type]
                              None if float_model is None else float_model.run,
                              desc=desc or ("fixed point + float" if float_model is not None else "fixed point"),
                              float_description=float_desc)
    if input_info is None:
        input_info = file_input(source.source_sha256, source.is_counts, input_path)  # type: ignore[union-attr]
    record = {"artifact_sha256": None if artifact is None else sha256_file(artifact),
              "input_sha256": input_info.get("sha256"), "hardware_profile": network.profile.name,
              "energy_profile": None if energy_profile is None else str(energy_profile),
              "artifact_provenance": artifact_provenance(network) if network.provenance else None}
    return assemble(description, evaluation, input_info, record, model=model_section(network, model_source),
                    network=network, energy_profile=energy_profile, float_desc=float_desc)


def report_on_artifact(
    artifact: str | os.PathLike,
    input_path: str | os.PathLike,
    energy_profile: str | os.PathLike | None = None,
    scheduler: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> BuiltReport:
    """``silif-deploy report``: the report of an artifact on a data file, against the float model it
    carries (when PyTorch is here); with a ``scheduler``, the pass runs as shards of ``shard_size``
    samples on that Dask cluster (their tallies added in shard order)."""
    from silif_deploy.converters.artifact import read_artifact
    from silif_deploy.converters.datasets import open_input
    from silif_deploy.deploy import sharding
    from silif_deploy.hw_models.energy_profile import load_energy_profile

    network = read_artifact(artifact)
    energy_report.chip_mapping(network, load_energy_profile(energy_profile))  # refuse before the run
    address = sharding.scheduler_address(scheduler)
    common = dict(model_source=artifact, artifact=artifact, energy_profile=energy_profile, input_path=input_path)
    if address is None:
        source = open_input(input_path, n_channels=network.n_inputs)
        source.start_hashing()
        return build_report(network, source, float_model=artifact_float_model(network, artifact), **common)  # type: ignore[arg-type]
    with sharding.dask_client(scheduler=address) as client:  # shards of samples, each evaluated as above
        info = sharding.inspect_input(client, input_path, network.n_inputs)
        evaluation = merge_evaluations(sharding.map_shards(
            client, sharding.evaluate_shard, input_path, str(artifact), shard_size=shard_size, desc="report shards"))
    return build_report(network, None, evaluation=evaluation, input_info=file_input(info.sha256, info.is_counts, input_path),
                        **common)  # type: ignore[arg-type]


class SimulationReport:
    """``simulate --report``: the report of a ``simulate`` run, tallied batch by batch as the run passes.

    A fixed-point (or Lava) run of an artifact is compared with the float model the artifact
    carries, on the same batch, when PyTorch is available (``fidelity``); a float run reports the
    float model's counts. No energy sections (``silif-deploy report`` has them).
    """

    def __init__(self, model_path: str | os.PathLike, engine: Engine, model_type: str | None = None):
        from silif_deploy.deploy.engines import source_kind

        self.record: dict[str, Any] = {"model_sha256": sha256_file(model_path)}
        self.network: FixedPointNetwork | None = None
        self.reference: Callable[[np.ndarray], RunResult] | None = None
        if source_kind(model_path) == "artifact":
            from silif_deploy.converters.artifact import read_artifact

            network = engine.network or read_artifact(model_path)
            self.model = model_section(network, model_path)
            if engine.name == "float":
                description = describe_float(network.float_model["config"], network.float_model["state_dict"])
            else:
                description = metrics.describe_fixed(network)
                self.record["hardware_profile"] = network.profile.name
                self.network = network
                float_model = artifact_float_model(network, model_path)
                self.reference = None if float_model is None else float_model.run
            self.record["artifact_provenance"] = artifact_provenance(network)
        else:
            float_model = engine.float_model
            cfg = float_model.config.to_dict()  # type: ignore[union-attr]
            description = describe_float_model(float_model)
            self.model = {"source": Path(model_path).name, "n_inputs": cfg["n_inputs"],
                          "hidden_sizes": cfg["hidden_sizes"], "n_classes": cfg["n_classes"]}
        self.tallies = Tallies(description)

    def add(self, x: np.ndarray, result: RunResult, labels: np.ndarray | None) -> None:
        """Tally one batch ``x`` and its ``result`` (and the float reference's run of ``x``)."""
        self.tallies.add(x, result, None if self.reference is None else self.reference(x), labels)

    def write(self, path: str | os.PathLike, source: InputSource) -> dict[str, Any]:
        """Write the report (JSON) of the batches added, all of ``source``."""
        built = assemble(self.tallies.description, self.tallies.evaluation(), file_input(source.source_sha256, source.is_counts),
                         {**self.record, "input_sha256": source.source_sha256}, model=self.model, network=self.network,
                         energy=False)
        write_json(built.report, path)
        return built.report
