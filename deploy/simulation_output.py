"""``simulate``'s output file, written batch by batch as the run produces it.

Two formats, chosen by the file name; both read back with numpy / h5py alone:

- ``.h5``: one chunked HDF5 dataset per array; hidden spikes packed 1 bit per (step, neuron)
  along the neuron axis (``np.unpackbits(f["spikes_0"], axis=-1)[..., :n_neurons]``, the
  dataset's ``n_neurons`` attribute), no compression filter (writing stays at disk speed);
- ``.npz``: plain (stored, not zlib-compressed) numpy arrays, spikes as bool (batch, time,
  neurons), streamed array by array (:class:`~silif_deploy.converters.npz_stream.StreamedNpz`), so
  memory stays one batch either way.

What is written (the ``record`` choices of :data:`RECORD`): always ``scores``, ``prediction``,
``spike_counts`` (samples, hidden layers), ``labels`` when the input has them, ``overflow_events``
(samples, layers) for fixed point, and ``provenance`` and ``summary`` (JSON: per-layer spikes per
sample and sparsity, accuracy; in ``.h5`` as file attributes, in ``.npz`` as the archive's comment,
``json.loads(zipfile.ZipFile(path).comment)``); ``spikes`` adds ``spikes_<i>``, ``readout`` adds ``readout_u``
(batch, time, classes), ``states`` the state trajectories ``state_<name>``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from silif_deploy.converters.npz_stream import StreamedNpz
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.run_result import RunResult

FORMAT = "silif-deploy-simulation"
FORMAT_VERSION = 1
RECORD = ("spikes", "readout", "states")
H5_CHUNK_ROWS = 16
"""Samples per HDF5 chunk: a 2×512 SSC layer's packed spikes make 300 KB chunks."""


def parse_record(text: str | None, states: bool = False) -> frozenset[str]:
    """``--record spikes,readout,states`` (or ``all``) as a set; ``states`` adds ``states``."""
    words = {w.strip() for w in (text or "").split(",") if w.strip()}
    if "all" in words:
        words = (words - {"all"}) | set(RECORD)
    unknown = sorted(words - set(RECORD))
    if unknown:
        raise SilifDeployError(f"--record: unknown choice '{unknown[0]}'; use a comma list of {', '.join(RECORD)} or all")
    return frozenset(words | ({"states"} if states else set()))


def output_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return "h5"
    if suffix == ".npz":
        return "npz"
    raise SilifDeployError(f"output '{path}': give a .h5 (chunked HDF5, spikes packed) or .npz file name")


class SimulationWriter:
    """Appends each batch's outputs to ``path`` (a temporary path: the caller renames it when done)."""

    def __init__(self, path: Path, fmt: str, n_samples: int, hidden_sizes: list[int], record: frozenset[str]):
        self.path, self.fmt, self.n_samples, self.record = path, fmt, n_samples, record
        self.rows = 0
        self.n_neurons = hidden_sizes
        self.spike_totals = np.zeros(len(hidden_sizes), np.int64)  # spikes per hidden layer, summed over samples
        self.n_steps = 0
        self.correct = 0
        if fmt == "h5":
            import h5py

            self._h5 = h5py.File(path, "w")
        else:
            self._npz = StreamedNpz(path, n_samples)

    def append(self, result: RunResult, labels: np.ndarray | None) -> None:
        """Write one batch (rows ``self.rows`` onwards)."""
        arrays = self._arrays(result, labels)
        n = len(result.scores)
        for name, value in arrays.items():
            self._write(name, value)
        self.rows += n

    def _arrays(self, result: RunResult, labels: np.ndarray | None) -> dict[str, np.ndarray]:
        diag = result.diagnostics or {}
        counts = diag.get("spike_counts")
        if counts is None:  # the float and Lava engines: count the rasters
            counts = np.stack([s.sum(axis=(1, 2)) for s in result.spikes], axis=1)
        counts = np.asarray(counts, np.int64)
        self.n_steps = int(result.readout_u.shape[1])
        self.spike_totals += counts.sum(axis=0)
        arrays = {"scores": result.scores, "prediction": result.prediction, "spike_counts": counts}
        if labels is not None:
            arrays["labels"] = np.asarray(labels, np.int64)
            self.correct += int(np.count_nonzero(result.prediction == labels))
        if "overflow_events" in diag:
            arrays["overflow_events"] = diag["overflow_events"]
        if "spikes" in self.record:
            for i, s in enumerate(result.spikes):
                arrays[f"spikes_{i}"] = np.packbits(s, axis=-1) if self.fmt == "h5" else s.astype(bool)
        if "readout" in self.record:
            arrays["readout_u"] = result.readout_u
        if "states" in self.record:
            arrays.update({f"state_{k}": v for k, v in (result.states or {}).items()})
        return arrays

    def _write(self, name: str, value: np.ndarray) -> None:
        value = np.ascontiguousarray(value)
        rows = slice(self.rows, self.rows + len(value))
        if self.fmt == "h5":
            if name not in self._h5:
                shape = (self.n_samples, *value.shape[1:])
                chunks = (max(1, min(H5_CHUNK_ROWS, self.n_samples)), *value.shape[1:]) if self.n_samples else None
                ds = self._h5.create_dataset(name, shape=shape, dtype=value.dtype, chunks=chunks)
                if name.startswith("spikes_"):
                    ds.attrs["n_neurons"] = self.n_neurons[int(name.split("_")[1])]
                    ds.attrs["packing"] = "np.packbits(axis=-1), bitorder big"
            self._h5[name][rows] = value
            return
        self._npz.append(name, value)

    def summary(self) -> dict[str, Any]:
        """Per hidden layer: neurons, spikes per sample, sparsity; and the accuracy on the labels."""
        n = max(self.rows, 1)
        layers = [{"layer": i, "neurons": neurons, "spikes_per_sample": float(total / n),
                   "sparsity": 1.0 - float(total) / (n * max(self.n_steps, 1) * neurons)}
                  for i, (neurons, total) in enumerate(zip(self.n_neurons, self.spike_totals))]
        return {"samples": self.rows, "steps": self.n_steps, "layers": layers}

    def finish(self, provenance: dict[str, Any], labelled: bool) -> dict[str, Any]:
        """Write provenance and summary and close the file; returns the summary."""
        summary = self.summary()
        if labelled:
            summary["accuracy"] = self.correct / max(self.rows, 1)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "record": sorted(self.record),
                "provenance": json.dumps(provenance), "summary": json.dumps(summary)}
        if self.fmt == "h5":
            self._h5.attrs.update(meta)
            self._h5.close()
            return summary
        # in the archive's comment, so that np.load lists the per-sample arrays only
        self._npz.close(comment=json.dumps(meta).encode())
        return summary

    def abort(self) -> None:
        """Close and drop everything written (the caller removes ``path``)."""
        if self.fmt == "h5":
            self._h5.close()
        else:
            self._npz.abort()
