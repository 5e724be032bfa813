"""Regression checks for users' CI: bit-exact goldens, and the fixed-vs-float accuracy budget.

A golden file (``.npz``) holds an input, the artifact's SHA-256, and the fixed-point outputs it
must reproduce bit for bit: every hidden layer's spikes (bit-packed along neurons) and the
readout's integer membrane v. ``verify`` re-simulates the input and reports the first difference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from silif_deploy import __version__
from silif_deploy.converters.artifact import read_artifact
from silif_deploy.converters.files import atomic_output, require_file, sha256_file
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.network import FixedPointNetwork
from silif_deploy.hw_models.simulator import simulate

GOLDEN_FORMAT = "silif-deploy-golden"
GOLDEN_VERSION = 1


def _fixed_outputs(network: FixedPointNetwork, x: np.ndarray) -> dict[str, np.ndarray]:
    result = simulate(network, x, record_states=True)
    arrays = {f"spikes_{i}": np.packbits(s, axis=-1) for i, s in enumerate(result.spikes)}
    arrays["readout_v"] = result.states["v_readout"]  # type: ignore[index]
    return arrays


def write_golden(artifact_path: str | os.PathLike, x: np.ndarray, out_path: str | os.PathLike) -> None:
    """Simulate ``x`` on the artifact and store input + outputs as a golden file (atomically)."""
    network = read_artifact(artifact_path)
    arrays = _fixed_outputs(network, x)
    with atomic_output(out_path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh, input=x, format=np.array(GOLDEN_FORMAT), format_version=np.array(GOLDEN_VERSION),
            artifact_sha256=np.array(sha256_file(artifact_path)), producer_version=np.array(__version__),
            hardware_profile=np.array(network.profile.name), n_neurons=np.array([l.size for l in network.hidden]),
            **arrays,
        )


@dataclass
class GoldenDiff:
    """The first place where a re-simulation departs from the golden (None when all match)."""

    layer: str
    sample: int
    step: int
    neuron: int
    expected: int
    got: int

    def __str__(self) -> str:
        return (f"first difference in {self.layer}: sample {self.sample}, step {self.step}, neuron {self.neuron}: "
                f"expected {self.expected}, got {self.got}")


def verify_golden(artifact_path: str | os.PathLike, golden_path: str | os.PathLike) -> tuple[GoldenDiff | None, dict[str, int]]:
    """Re-simulate the golden input; return (first difference or None, mismatch counts per output)."""
    g = _read_golden(golden_path)
    network = read_artifact(artifact_path)
    _check_same_network(g, network, golden_path)
    got = _fixed_outputs(network, g["input"])
    counts, first = {}, None
    names = [f"spikes_{i}" for i in range(len(network.hidden))] + ["readout_v"]
    for name in names:
        if name not in g:
            raise SilifDeployError(f"golden '{golden_path}' lacks '{name}': the file is damaged; make it again")
        if name.startswith("spikes_"):
            n = int(g["n_neurons"][int(name.split("_")[1])])
            exp, new = np.unpackbits(g[name], axis=-1)[..., :n], np.unpackbits(got[name], axis=-1)[..., :n]
        else:
            exp, new = g[name], got[name]
        if exp.shape != new.shape:
            raise SilifDeployError(f"golden '{golden_path}': '{name}' has shape {exp.shape}, the artifact gives {new.shape}")
        diff = np.argwhere(exp != new)
        counts[name] = len(diff)
        if len(diff) and first is None:
            b, t, n = (int(v) for v in diff[np.lexsort((diff[:, 2], diff[:, 0], diff[:, 1]))][0])
            first = GoldenDiff(name, b, t, n, int(exp[b, t, n]), int(new[b, t, n]))
    return first, counts


def _check_same_network(g: dict[str, np.ndarray], network: FixedPointNetwork, golden_path) -> None:
    """Refuse a golden of another shape: a regression diff only makes sense for the same layer sizes."""
    sizes = [int(g["input"].shape[-1]), *(int(n) for n in g["n_neurons"]), int(g["readout_v"].shape[-1])]
    expected = [network.n_inputs, *(layer.size for layer in network.layers)]
    if sizes != expected:
        raise SilifDeployError(
            f"golden '{golden_path}' was made for another network ({' -> '.join(map(str, sizes))}; this artifact is "
            f"{' -> '.join(map(str, expected))}); make a new one with: silif-deploy golden ARTIFACT --input X -o GOLDEN.npz"
        )


def _read_golden(path: str | os.PathLike) -> dict[str, np.ndarray]:
    p = require_file(path, "golden file")
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise SilifDeployError(f"'{p}' is not a golden .npz file ({err})") from None
    if str(data.get("format", "")) != GOLDEN_FORMAT:
        raise SilifDeployError(f"'{p}' is not a silif-deploy golden file; make one with: silif-deploy golden ARTIFACT --input X -o GOLDEN.npz")
    if int(data["format_version"]) > GOLDEN_VERSION:
        raise SilifDeployError(f"'{p}' has golden format version {int(data['format_version'])}; upgrade silif-deploy")
    return data


def accuracy_drop(float_pred: np.ndarray, fixed_pred: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """(float accuracy, fixed accuracy, drop in percentage points) on labelled data."""
    n = len(labels)
    correct_float, correct_fixed = int(np.sum(float_pred == labels)), int(np.sum(fixed_pred == labels))
    # from the integer counts: 100·(1 − 199/200) is 0.5000000000000004, which a 0.5 budget would refuse
    return correct_float / n, correct_fixed / n, 100.0 * (correct_float - correct_fixed) / n
