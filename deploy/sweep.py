"""``silif-deploy sweep``: how many bits a network needs, over checkpoints, bit widths and a whole data set.

Every (weight, coefficient, state) bit-width combination is a hardware profile derived from the
base profile: its TOML text with those three keys (and the name) changed, written beside the
results with its provenance (:func:`derived_profile_text`). Each checkpoint is quantized under
each derived profile with :func:`~silif_deploy.deploy.pipeline.quantize_model` (weights-only state
ranges, as ``verify --data``), simulated bit-accurately on every sample, and compared with float.

The work is a graph of Dask tasks (:mod:`.sharding`), per checkpoint:

* ``quantize`` (configuration): the fixed-point network, or the one-line reason it cannot be built;
* ``float`` (shard): the float run of a shard of samples, once for all configurations;
* ``fixed`` (configuration, shard): the bit-accurate run of the shard, tallied, and its fidelity
  against the float run;
* ``row`` (configuration): the shard tallies added in shard order, turned into the report's
  metrics and energy, and kept as one row.

Tallies are integer counts, and the few float sums are added in shard order over shards fixed by
``shard_size``: a row is the same bytes on one worker, on many, and without Dask.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from silif_deploy.converters.files import provenance, sha256_file
from silif_deploy.deploy import sharding
from silif_deploy.deploy.batching import batches
from silif_deploy.deploy.report_builder import Tallies
from silif_deploy.deploy.sharding import Ref, Task
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models import metrics
from silif_deploy.hw_models.profile import HardwareProfile, profile_from_text
from silif_deploy.hw_models.run_result import RunResult

SCHEMA = "silif-deploy/sweep"
SCHEMA_VERSION = 1
BIT_KEYS = {"weight_bits": ("weights", "bits"), "coefficient_bits": ("coefficients", "bits"),
            "state_bits": ("state", "bits")}
"""The swept fields of :class:`HardwareProfile` and their (section, key) in a profile's TOML."""


@dataclass(frozen=True)
class BitWidths:
    """One configuration of the sweep."""

    weight_bits: int
    coefficient_bits: int
    state_bits: int

    def profile_name(self, base: str) -> str:
        return f"{base}-w{self.weight_bits}-c{self.coefficient_bits}-s{self.state_bits}"


def configurations(base: HardwareProfile, weight_bits: list[int] | None, coefficient_bits: list[int] | None,
                   state_bits: list[int] | None) -> list[BitWidths]:
    """Every combination, in the order given; an axis not given keeps the base profile's width."""
    axes = [values or [getattr(base, name)] for name, values in
            zip(BIT_KEYS, (weight_bits, coefficient_bits, state_bits))]
    return [BitWidths(*combo) for combo in itertools.product(*axes)]


def derived_profile_text(base: HardwareProfile, config: BitWidths, base_sha256: str) -> str:
    """The base profile's TOML text with the configuration's bit widths and a new name, headed by
    its provenance. The edit keeps every other line (and comment) of the base as it is."""
    values = {("", "name"): f'"{config.profile_name(base.name)}"'}
    values.update({key: str(getattr(config, field)) for field, key in BIT_KEYS.items()})
    bounded = _bounded_by_state(base, config.state_bits)
    values.update({key: str(value) for key, value in bounded.items()})
    section, lines = "", []
    for line in base.source_text.splitlines():
        header = re.match(r"\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            section = header.group(1).strip()
        entry = re.match(r"(\s*)([A-Za-z0-9_-]+)(\s*=\s*)([^#]*?)(\s*#.*)?$", line)
        if entry and (section, entry.group(2)) in values:
            line = entry.group(1) + entry.group(2) + entry.group(3) + values[(section, entry.group(2))] + (entry.group(5) or "")
        lines.append(line)
    header = [f"# Derived by silif-deploy sweep from hardware profile '{base.name}' (sha256 {base_sha256}):",
              "# " + ", ".join(f"{'.'.join(key)} = {getattr(config, field)}" for field, key in BIT_KEYS.items()),
              *([f"# {', '.join(f'{sec}.{key} = {value}' for (sec, key), value in bounded.items())}: narrowed so that "
                 f"thresholds and biases fit {config.state_bits}-bit states"] if bounded else []),
              "# (every other line is the base profile's)."]
    return "\n".join(header + lines) + "\n"


def _bounded_by_state(base: HardwareProfile, state_bits: int) -> dict[tuple[str, str], int]:
    """The base's threshold and bias mantissas narrowed to what ``state_bits``-bit states hold (a
    chip with narrower states has narrower thresholds): only those that need it."""
    bounded = {}
    threshold_bits = min(base.threshold_mantissa_bits, state_bits - base.threshold_exponent)
    if threshold_bits != base.threshold_mantissa_bits:
        bounded[("threshold", "mantissa_bits")] = threshold_bits
    if base.bias_mantissa_bits > state_bits:
        bounded[("bias", "mantissa_bits")] = state_bits
    return bounded


def derived_profile(base: HardwareProfile, config: BitWidths, base_sha256: str) -> tuple[str, HardwareProfile]:
    """(TOML text, profile) of one configuration; :class:`SilifDeployError` when the widths are illegal."""
    text = derived_profile_text(base, config, base_sha256)
    profile = profile_from_text(text, origin=config.profile_name(base.name))
    got = BitWidths(profile.weight_bits, profile.coefficient_bits, profile.state_bits)
    if got != config or profile.name != config.profile_name(base.name):
        raise SilifDeployError(f"hardware profile '{base.name}' does not hold its bit widths as plain "
                               "[weights] bits, [coefficients] bits and [state] bits lines; write them so to sweep it")
    return text, profile


# --------------------------------------------------------------------------------------------
# Tasks (module-level: the workers import them).


@dataclass(frozen=True)
class Unbuildable:
    """A configuration that cannot be built, and why (one line)."""

    reason: str


@dataclass
class FloatShard:
    """The float run of one shard, spikes bit-packed along neurons (the fixed tasks fetch it)."""

    scores: np.ndarray
    readout_u: np.ndarray
    packed_spikes: list[np.ndarray]
    neurons: list[int]
    correct: int

    def result(self, rows: slice = slice(None)) -> RunResult:
        spikes = [np.unpackbits(p[rows], axis=-1, count=n).view(bool) for p, n in zip(self.packed_spikes, self.neurons)]
        return RunResult(self.scores[rows], spikes, self.readout_u[rows])


@dataclass
class FixedShard:
    """The tallies of one (configuration, shard) task."""

    tally: metrics.RunTally
    fidelity: metrics.FidelityTally
    float_correct: int


def quantize_task(checkpoint: str, model_type: str | None, profile_text: str, origin: str) -> Any:
    from silif_deploy.deploy.pipeline import quantize_model

    try:
        hw = profile_from_text(profile_text, origin=origin)
        with sharding.single_threaded_float():
            return quantize_model(sharding.cached_float_model(checkpoint, model_type), hw)
    except (SilifDeployError, ValueError, OverflowError) as err:  # the widths the quantizer cannot meet
        return Unbuildable(f"{type(err).__name__}: {err}" if not isinstance(err, SilifDeployError) else str(err))


def float_task(checkpoint: str, model_type: str | None, data_path: str, binning, start: int, stop: int) -> FloatShard:
    model = sharding.cached_float_model(checkpoint, model_type)
    data = sharding.read_shard(data_path, start, stop, binning)
    with sharding.single_threaded_float():
        parts = [model.run(x) for x, _ in batches(data.x, None)]  # a task's rasters stay one batch's, whatever the shard
    spikes = [np.concatenate([np.packbits(p.spikes[l], axis=-1) for p in parts]) for l in range(len(parts[0].spikes))]
    scores = np.concatenate([p.scores for p in parts])
    return FloatShard(scores, np.concatenate([p.readout_u for p in parts]), spikes,
                      [s.shape[-1] for s in parts[0].spikes], int(np.count_nonzero(scores.argmax(axis=1) == data.labels)))


def fixed_task(network: Any, reference: FloatShard, data_path: str, binning, start: int, stop: int) -> FixedShard | None:
    from silif_deploy.hw_models.simulator import simulate

    if isinstance(network, Unbuildable):
        return None
    data, tallies = sharding.read_shard(data_path, start, stop, binning), Tallies(metrics.describe_fixed(network))
    with sharding.single_threaded_float():
        at = 0
        for x, labels in batches(data.x, None, labels=data.labels):
            tallies.add(x, simulate(network, x), reference.result(slice(at, at + len(x))), labels)
            at += len(x)
    return FixedShard(tallies.tally, tallies.fidelity, reference.correct)


def row_task(base_row: dict[str, Any], network: Any, shards: list[FixedShard | None], energy_profile: str,
             is_counts: bool) -> dict[str, Any]:
    """One row of the table from a configuration's shard tallies (added in shard order)."""
    from silif_deploy.deploy.energy_report import add_energy_sections

    if isinstance(network, Unbuildable):
        return {**base_row, "status": "unbuildable", "reason": network.reason}
    tally, fidelity = shards[0].tally, shards[0].fidelity
    for shard in shards[1:]:
        tally, fidelity = tally + shard.tally, fidelity + shard.fidelity
    float_correct = sum(shard.float_correct for shard in shards)
    report = metrics.build_report(metrics.describe_fixed(network), tally, input_info={"is_counts": is_counts},
                                  provenance={}, fidelity=fidelity, quantization=network.quantization)
    row = {**base_row, "status": "ok", "reason": None}
    try:
        energy = add_energy_sections(report, network, energy_profile)["energy"]
        row["energy_uj"], row["dynamic_energy_uj"] = energy["total_uj"], energy["dynamic_uj"]
    except SilifDeployError as err:  # e.g. the network does not fit one chip of the profile
        row["energy_uj"] = row["dynamic_energy_uj"] = None
        row["reason"] = f"no energy estimate: {err}"
    n, totals, fid = tally.samples, report["totals"], report["fidelity"]
    quant = report["quantization"]["layers"]
    row.update({
        "samples": n,
        "accuracy_float": float_correct / n,
        "accuracy_fixed": tally.correct / n,
        # from the integer counts, so equal accuracies give exactly 0
        "accuracy_drop_pp": 100.0 * (float_correct - tally.correct) / n,
        "prediction_agreement": fid["prediction_agreement"],
        "spike_agreement": {layer["name"]: layer["spike_agreement"] for layer in fid["layers"]},
        "readout_mean_abs_error": fid["readout_mean_abs_error"],
        "sop": totals["sop"],
        "effective_sop": totals["effective_sop"],
        "sparsity": totals["sparsity"],
        "overflow_events": totals["overflow_events"],
        "overflow_events_by_layer": {layer["name"]: layer["overflow_events"] for layer in report["layers"]},
        "degenerate_neurons": sum(layer.get(key, 0) for layer in quant for key in metrics.neuron_degeneracies(layer.get("kind"))),
        "degenerate_neurons_by_layer": {layer["name"]: {key: layer[key] for key in metrics.neuron_degeneracies(layer.get("kind"))
                                                        if layer.get(key)} for layer in quant},
        "weights_zeroed": sum(layer.get("weights_zeroed", 0) for layer in quant),
        "warnings": report["quantization"]["warnings"],
    })
    return metrics.json_safe(row)


# --------------------------------------------------------------------------------------------
# The sweep.


@dataclass
class SweepResult:
    """The table's rows (numbers only: the same bytes on any cluster) and how the run went."""

    rows: list[dict[str, Any]]
    profiles: dict[str, str]
    provenance: dict[str, Any]
    data: dict[str, Any]
    run: dict[str, Any]
    records: list[sharding.TaskRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "provenance": self.provenance,
                "data": self.data, "run": self.run, "rows": self.rows}


@dataclass(frozen=True)
class _Checkpoint:
    path: str
    name: str
    model_type: str | None
    detected_type: str
    n_inputs: int
    binning: Any
    sha256: str


def _checkpoints(paths: list[str], model_type: str | None, binning) -> list[_Checkpoint]:
    """Load every checkpoint once here, so a bad one fails before any task runs."""
    from silif_deploy.deploy.accuracy_check import model_binning
    from silif_deploy.deploy.engines import load_float_model

    out = []
    for path in paths:
        model = load_float_model(path, model_type=model_type, for_fixed_point="sweep")
        out.append(_Checkpoint(str(path), Path(path).name, model_type, model.config.model_type, model.config.n_inputs,
                               binning or model_binning(model), sha256_file(path)))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise SilifDeployError(f"two checkpoints share a file name ({', '.join(names)}); rename one so the rows can tell them apart")
    return out


def run_sweep(
    checkpoints: list[str], data_path: str, configs: list[BitWidths], base: HardwareProfile, client,
    energy_profile: str, shard_size: int = sharding.DEFAULT_SHARD_SIZE, model_type: str | None = None,
    binning: str | None = None, max_samples: int | None = None,
) -> SweepResult:
    """Run the sweep (module docstring) on ``client`` (None: in this process)."""
    started = time.perf_counter()
    base_sha = _text_sha256(base.source_text)
    models = _checkpoints(checkpoints, model_type, binning)
    profiles: dict[str, str] = {}
    reasons: dict[BitWidths, str] = {}
    for config in configs:
        try:
            profiles[config.profile_name(base.name)] = derived_profile(base, config, base_sha)[0]
        except SilifDeployError as err:
            reasons[config] = str(err)
    token = uuid.uuid4().hex[:8]  # keys unique on a shared scheduler
    tasks: list[Task] = []
    rows: list[str] = []
    infos = {}
    for m, ckpt in enumerate(models):
        if ckpt.binning not in infos:
            infos[ckpt.binning] = sharding.on_worker(client, sharding.inspect_data, data_path, ckpt.binning)
        info = infos[ckpt.binning]
        if not info.labelled:
            raise SilifDeployError(f"'{data_path}' has no labels; sweep needs labelled samples (.h5, or .npz with 'labels')")
        if info.channels != ckpt.n_inputs:
            raise SilifDeployError(f"'{data_path}' has {info.channels} channels but '{ckpt.name}' expects {ckpt.n_inputs}; "
                                   "check the data file or --binning")
        ranges = sharding.shard_ranges(min(info.samples, max_samples or info.samples), shard_size)
        networks: dict[int, Any] = {}  # a Ref to the quantize task, or why there is none
        for c, config in enumerate(configs):
            name = config.profile_name(base.name)
            if name in profiles:
                key = f"quantize/{m}/{c}-{token}"
                tasks.append(Task(key, quantize_task, (ckpt.path, ckpt.model_type, profiles[name], name)))
                networks[c] = Ref(key)
            else:
                networks[c] = Unbuildable(reasons[config])
        shard_keys: dict[int, list[str]] = {c: [] for c in range(len(configs))}
        for start, stop in ranges if any(isinstance(n, Ref) for n in networks.values()) else []:
            float_key = f"float/{m}/{start}-{token}"
            tasks.append(Task(float_key, float_task, (ckpt.path, ckpt.model_type, data_path, ckpt.binning, start, stop)))
            for c in range(len(configs)):
                if isinstance(networks[c], Unbuildable):
                    continue
                key = f"fixed/{m}/{c}/{start}-{token}"
                tasks.append(Task(key, fixed_task, (networks[c], Ref(float_key), data_path, ckpt.binning, start, stop)))
                shard_keys[c].append(key)
        for c, config in enumerate(configs):
            base_row = {"model": ckpt.name, "model_type": ckpt.detected_type,
                        "profile": config.profile_name(base.name), **asdict(config)}
            row_key = f"row/{m}/{c}-{token}"
            tasks.append(Task(row_key, row_task, (base_row, networks[c], [Ref(k) for k in shard_keys[c]],
                                                  energy_profile, info.is_counts)))
            rows.append(row_key)
    graph = sharding.run_graph(client, tasks, rows, desc="sweep tasks")
    first = next(iter(infos.values()))
    samples = min(first.samples, max_samples or first.samples)
    return SweepResult(
        rows=[graph.results[k] for k in rows],
        profiles=profiles,
        provenance=provenance(
            checkpoints={c.name: c.sha256 for c in models}, input_sha256=first.sha256,
            hardware_profile=base.name, hardware_profile_sha256=base_sha, energy_profile=str(energy_profile),
        ),
        data={"path": str(data_path), "samples": samples, "steps": first.steps, "channels": first.channels,
              "shard_size": shard_size, "shards": len(sharding.shard_ranges(samples, shard_size))},
        run={**sharding.describe_client(client), "tasks": len(tasks), "wall_s": time.perf_counter() - started,
             "graph_wall_s": graph.wall_s, "task_seconds": graph.seconds_by_kind()},
        records=graph.records,
    )


def _text_sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()

