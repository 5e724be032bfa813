"""Regression checks for users' CI: bit-exact goldens, and the fixed-vs-float accuracy budget.

A golden file (``.npz``, format 2) holds an input, the artifact's identity (its content hash,
:func:`~silif_deploy.converters.artifact.artifact_identity`), the fixed-point outputs it must
reproduce bit for bit (every hidden layer's spikes, bit-packed along neurons, and the readout's
integer membrane v) and digests of every hidden state: per layer, one 64-bit BLAKE2b digest per
(sample, step) of the layer's two state vectors, and one per (sample, neuron) of the neuron's
state trajectory. ``verify`` re-simulates the input and fails on any difference: a changed
output (reported with its first (layer, sample, step, neuron) and the two values), a changed
state (the first (layer, sample) and step whose digest differs, and the lowest neuron whose
trajectory differs), or a changed artifact (identity) even where no state on this input moved.

A network with a mean_linear decoder (SpikingSSM, binary S4D) records every neuron stage in run
order (the S4D states, whose spike rasters are empty, and the somas: their states are digested like
a layer's) and, in place of readout_v, the decoder's per-step logits ``readout_u`` (float64, computed
on the host from the exact integers of the stream; compared bit for bit as well).

Format 1 goldens (silif-deploy 0.1.0) hold only spikes and the readout: they are still checked on
what they hold, and ``verify`` says that they carry no state or identity check.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from silif_deploy import __version__
from silif_deploy.converters.artifact import artifact_identity, read_artifact
from silif_deploy.converters.datasets import InputSource
from silif_deploy.converters.files import atomic_output, provenance, refuse_damaged, require_file, require_npz, sha256_file
from silif_deploy.converters.input_checks import check_input_chunk, check_input_size
from silif_deploy.converters.npz_stream import StreamedNpz
from silif_deploy.deploy.batching import batches
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.network import FixedPointNetwork, MeanLinear, neuron_count
from silif_deploy.hw_models.neuron_kinds import KINDS
from silif_deploy.hw_models.simulator import simulate

GOLDEN_FORMAT = "silif-deploy-golden"
GOLDEN_VERSION = 2
"""1: spikes and readout (0.1.0); 2: also the artifact identity and per-layer state digests."""
_DIGEST_BYTES = 8
GOLDEN_BATCH = 16
"""Samples simulated at once, fewer than :data:`~silif_deploy.deploy.batching.BATCH_SIZE`: with every
state recorded, a 2 × 512 SSC network holds ~6 MB per sample."""


def _digests(rows: np.ndarray) -> np.ndarray:
    """One 64-bit BLAKE2b digest (as uint64) of each row of a C-contiguous (..., k) int64 array."""
    flat = np.ascontiguousarray(rows, dtype="<i8").reshape(-1, rows.shape[-1])
    out = np.empty(len(flat), "<u8")
    for i, row in enumerate(flat):
        out[i] = int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=_DIGEST_BYTES).digest(), "little")
    return out.reshape(rows.shape[:-1])


def state_digests(*states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Digests of a layer's k (batch, time, neurons) states: per (sample, step) over [x1, …, xk] of
    all neurons, and per (sample, neuron) over the neuron's (x1, …, xk) at every step."""
    x1 = states[0]
    per_step = _digests(np.concatenate(states, axis=2))
    per_neuron = _digests(np.stack(states, axis=-1).transpose(0, 2, 1, 3).reshape(x1.shape[0], x1.shape[2], -1))
    return per_step, per_neuron


def _recorded_stages(network: FixedPointNetwork) -> list[tuple[str, int]]:
    """(kind, size) of the neuron stages a golden records spikes and state digests of: a chain's hidden
    layers; every neuron stage of a graph with a ``mean_linear`` decoder (SpikingSSM: the s4d states,
    whose spike rasters are empty, and the somas), in run order, as the simulator returns them."""
    if isinstance(network.stages[-1], MeanLinear):
        return [(st.kind, int(neuron_count(st))) for st in network.neuron_stages]
    return [(layer.kind, layer.size) for layer in network.hidden]


def _readout_key(network: FixedPointNetwork) -> str:
    """``readout_v``: the CUBA readout's integer membrane; ``readout_u``: a mean_linear decoder's per-step
    logits (float64 on the host from the exact integers of the stream it reads)."""
    return "readout_u" if isinstance(network.stages[-1], MeanLinear) else "readout_v"


def _fixed_outputs(network: FixedPointNetwork, x: np.ndarray) -> dict[str, np.ndarray]:
    result = simulate(network, x, record_states=True)
    arrays = {f"spikes_{i}": np.packbits(s, axis=-1) for i, s in enumerate(result.spikes)}
    key = _readout_key(network)
    arrays[key] = result.readout_u if key == "readout_u" else result.states["v_readout"]  # type: ignore[index]
    for i, (kind, _) in enumerate(_recorded_stages(network)):
        arrays[f"state_digests_{i}"], arrays[f"neuron_digests_{i}"] = state_digests(
            *(result.states[f"{name}_{i}"] for name in KINDS[kind].states))  # type: ignore[index]
    return arrays


def write_golden(artifact_path: str | os.PathLike, x: np.ndarray | InputSource, out_path: str | os.PathLike) -> None:
    """Simulate ``x`` (an array, or an input read in chunks) on the artifact and store input, identity,
    outputs and state digests (atomically), each array written as its batches come (memory: one batch)."""
    network = read_artifact(artifact_path)
    source = x if isinstance(x, InputSource) else InputSource.from_array(x)
    if source.shape[-1] != network.n_inputs:
        raise SilifDeployError(f"input has {source.shape[-1]} channels, the artifact expects {network.n_inputs}")
    identity = artifact_identity(network)
    record = provenance(artifact_sha256=sha256_file(artifact_path), artifact_identity=identity,
                        hardware_profile=network.profile.name)
    with atomic_output(out_path) as tmp:
        npz = StreamedNpz(tmp, len(source), compress=True)
        try:
            for xb, _ in batches(source, "golden (fixed point)", GOLDEN_BATCH):
                npz.append("input", xb)
                for name, value in _fixed_outputs(network, xb).items():
                    npz.append(name, value)
            for name, value in {
                "format": GOLDEN_FORMAT, "format_version": GOLDEN_VERSION, "artifact_sha256": record["artifact_sha256"],
                "artifact_identity": identity, "producer_version": __version__,
                "provenance": json.dumps(record, sort_keys=True), "hardware_profile": network.profile.name,
                "n_neurons": [size for _, size in _recorded_stages(network)],
            }.items():
                npz.put(name, np.array(value))
            npz.close()
        except BaseException:
            npz.abort()
            raise


@dataclass
class GoldenDiff:
    """The first place where a re-simulated output departs from the golden (None when all match)."""

    layer: str
    sample: int
    step: int
    neuron: int
    expected: int
    got: int

    def __str__(self) -> str:
        return (f"first difference in {self.layer}: sample {self.sample}, step {self.step}, neuron {self.neuron}: "
                f"expected {self.expected}, got {self.got}")


@dataclass
class StateDiff:
    """The first (sample, step) where a hidden layer's state digest departs from the golden, and the
    lowest-numbered neuron of that sample whose state trajectory differs."""

    layer: int
    states: tuple[str, str]
    sample: int
    step: int
    neuron: int

    def __str__(self) -> str:
        return (f"first difference in the states ({', '.join(self.states)}) of layer {self.layer}: sample "
                f"{self.sample}, step {self.step}, neuron {self.neuron} (the lowest neuron whose trajectory "
                "differs); spikes and readout are unchanged")


@dataclass
class IdentityDiff:
    """The artifact's content differs from the golden's although every output and state matched."""

    expected: str
    got: str

    def __str__(self) -> str:
        return (f"the artifact differs from the one the golden was made from (identity {self.got[:16]}…, golden "
                f"{self.expected[:16]}…), though every output and state matches on the golden's input")


def verify_golden(artifact_path: str | os.PathLike, golden_path: str | os.PathLike,
                  notes: list[str] | None = None) -> tuple[GoldenDiff | StateDiff | IdentityDiff | None, dict[str, int]]:
    """Re-simulate the golden input; return (first difference or None, mismatch counts per check).

    ``notes`` (when given) receives what the check could not cover (a format 1 golden).
    """
    g = read_golden(golden_path)
    network = read_artifact(artifact_path)
    _check_same_network(g, network, golden_path)
    got = _fixed_outputs(network, g["input"])
    counts: dict[str, int] = {}
    first: GoldenDiff | StateDiff | IdentityDiff | None = None
    stages = _recorded_stages(network)
    for i in range(len(stages)):
        n = int(g["n_neurons"][i])
        exp, new = np.unpackbits(g[f"spikes_{i}"], axis=-1)[..., :n], np.unpackbits(got[f"spikes_{i}"], axis=-1)[..., :n]
        first = _compare(f"spikes_{i}", exp, new, counts, first)
    key = _readout_key(network)
    first = _compare(key, g[key], got[key], counts, first)
    if int(g["format_version"]) < 2:
        if notes is not None:
            notes.append(f"this golden (format {int(g['format_version'])}, silif-deploy {g.get('producer_version', '0.1.0')}) "
                         "carries no state check and no artifact identity: only spikes and the readout were compared; "
                         "make a new one with `silif-deploy golden` for the full check")
        return first, counts
    for i in range(len(stages)):
        per_step = np.argwhere(g[f"state_digests_{i}"] != got[f"state_digests_{i}"])  # (sample, step) pairs
        counts[f"states_{i}"] = len(per_step)
        per_neuron = g[f"neuron_digests_{i}"] != got[f"neuron_digests_{i}"]
        if per_neuron.any() != bool(len(per_step)):  # equal states give equal digests both ways
            raise SilifDeployError(f"golden '{golden_path}': the state digests of layer {i} contradict each other; "
                                   "the file is damaged, make it again with: silif-deploy golden ARTIFACT --input X -o GOLDEN.npz")
        if len(per_step) and first is None:
            sample, step = (int(v) for v in per_step[np.lexsort((per_step[:, 0], per_step[:, 1]))][0])
            neurons = np.flatnonzero(per_neuron[sample])
            first = StateDiff(i, KINDS[stages[i][0]].states, sample, step, int(neurons[0]) if len(neurons) else -1)
    identity = artifact_identity(network)
    counts["artifact_identity"] = int(identity != str(g["artifact_identity"]))
    if counts["artifact_identity"] and first is None:
        first = IdentityDiff(str(g["artifact_identity"]), identity)
    return first, counts


def _compare(name: str, exp: np.ndarray, new: np.ndarray, counts: dict[str, int], first):
    """Count the differences of one exact output; return the earliest (step, then sample, then neuron)
    as the first difference when there is none yet."""
    diff = np.argwhere(exp != new)
    counts[name] = len(diff)
    if len(diff) and first is None:
        b, t, n = (int(v) for v in diff[np.lexsort((diff[:, 2], diff[:, 0], diff[:, 1]))][0])
        value = int if exp.dtype.kind in "iub" else float
        return GoldenDiff(name, b, t, n, value(exp[b, t, n]), value(new[b, t, n]))
    return first


def _check_same_network(g: dict[str, np.ndarray], network: FixedPointNetwork, golden_path) -> None:
    """Refuse a golden of another shape: a regression diff only makes sense for the same layer sizes."""
    key = _readout_key(network)
    if key not in g:
        raise SilifDeployError(f"golden '{golden_path}' was made for another kind of network (it holds no {key}); make a "
                               "new one with: silif-deploy golden ARTIFACT --input X -o GOLDEN.npz")
    sizes = [int(g["input"].shape[-1]), *(int(n) for n in g["n_neurons"]), int(g[key].shape[-1])]
    expected = [network.n_inputs, *(size for _, size in _recorded_stages(network)),
                network.n_classes if key == "readout_u" else network.readout.size]
    if sizes != expected:
        raise SilifDeployError(
            f"golden '{golden_path}' was made for another network ({' -> '.join(map(str, sizes))}; this artifact is "
            f"{' -> '.join(map(str, expected))}); make a new one with: silif-deploy golden ARTIFACT --input X -o GOLDEN.npz"
        )


def read_golden(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and check a golden file: its marker and version, and the shape and type of every array."""
    p = require_file(path, "golden file")
    data = _load_npz(p)
    remake = "make it again with: silif-deploy golden ARTIFACT --input X -o GOLDEN.npz"
    if str(data.get("format", "")) != GOLDEN_FORMAT:
        raise SilifDeployError(f"'{p}' is not a silif-deploy golden file; make one with: silif-deploy golden ARTIFACT --input X -o GOLDEN.npz")
    version = data.get("format_version")
    if version is None or version.shape != () or not np.issubdtype(version.dtype, np.integer) or int(version) < 1:
        raise SilifDeployError(f"golden '{p}' has no valid format_version; {remake}")
    if int(version) > GOLDEN_VERSION:
        raise SilifDeployError(f"'{p}' has golden format version {int(version)}; upgrade silif-deploy")

    def need(name: str, ndim: int, kind: str) -> np.ndarray:
        a = data.get(name)
        if a is None or a.ndim != ndim or a.dtype.kind not in kind:
            raise SilifDeployError(f"golden '{p}': '{name}' is missing or malformed; the file is damaged, {remake}")
        return a

    x = need("input", 3, "biuf")
    check_input_chunk(x, f"{p}: input")
    check_input_size(x.shape, f"{p}: input")
    n_neurons = need("n_neurons", 1, "iu")
    batch, steps = x.shape[:2]
    shapes = {f"spikes_{i}": (batch, steps, -(-int(n) // 8)) for i, n in enumerate(n_neurons)}
    key = "readout_u" if "readout_u" in data else "readout_v"  # a mean_linear decoder's logits, or the CUBA readout's v
    readout = need(key, 3, "f" if key == "readout_u" else "i")
    shapes[key] = (batch, steps, readout.shape[2])
    if int(version) >= 2:
        if need("artifact_identity", 0, "U").size != 1:
            raise SilifDeployError(f"golden '{p}': malformed artifact_identity; {remake}")
        for i, n in enumerate(n_neurons):
            shapes[f"state_digests_{i}"] = (batch, steps)
            shapes[f"neuron_digests_{i}"] = (batch, int(n))
    for name, shape in shapes.items():
        a = need(name, len(shape), "u" if name.startswith(("spikes", "state_", "neuron_")) else "f" if name == "readout_u" else "i")
        if a.shape != shape or (name.startswith("spikes") and a.dtype != np.uint8):
            raise SilifDeployError(f"golden '{p}': '{name}' has shape {a.shape}, expected {shape}; the file is damaged, {remake}")
    return data


@refuse_damaged("golden .npz file")
def _load_npz(p) -> dict[str, np.ndarray]:
    require_npz(p, "golden .npz file")
    with open(p, "rb") as fh:  # closed even when numpy fails on a damaged file
        with np.load(fh, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


def accuracy_drop(float_pred: np.ndarray, fixed_pred: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """(float accuracy, fixed accuracy, drop in percentage points) on labelled data."""
    n = len(labels)
    correct_float, correct_fixed = int(np.sum(float_pred == labels)), int(np.sum(fixed_pred == labels))
    # from the integer counts: 100·(1 − 199/200) is 0.5000000000000004, which a 0.5 budget would refuse
    return correct_float / n, correct_fixed / n, 100.0 * (correct_float - correct_fixed) / n
