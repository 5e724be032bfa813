"""Readers for the inputs users have: SHD / SSC spike files and (batch, time, channels) arrays.

The SHD / SSC binning reproduces the authors' ``SpikingDataset`` (``neurons.md`` §13.1)::

    grid = linspace(0, max_time, nb_steps)          # nb_steps points, both ends included
    step = digitize(t, grid)                        # grid[k-1] <= t < grid[k]  ->  step k
    x[sample, step, unit // spatial_bin] += 1       # event counts; 700 units -> 700/spatial_bin

so the bin width is max_time / (nb_steps - 1), step 0 only receives t < 0 (never, for real files),
and events with t >= max_time (step == nb_steps) are dropped explicitly and counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from silif_deploy.converters.files import refuse_damaged, require_file, sha256_file
from silif_deploy.converters.input_checks import check_input_chunk, check_input_size, check_labels, check_spike_times
from silif_deploy.errors import SilifDeployError

N_UNITS = 700
"""Cochlea channels of SHD / SSC (``spikes/units`` is 0…699)."""

BINNING: dict[str, tuple[int, float]] = {"shd": (250, 1.0), "ssc": (300, 1.2), "ssc10": (100, 1.0)}
"""Reference (nb_steps, max_time in s) presets: SHD configs, the SSC 4 ms configs of the shipped
checkpoints, and the ``ssc_*_10ms`` configs."""

DATA_SOURCE_HINT = (
    "SHD/SSC files (shd_{train,test}.h5, ssc_{train,valid,test}.h5) are distributed on the Zenke lab's "
    "Heidelberg spiking datasets page (https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/); "
    "for offline stand-in data run `silif-deploy make-data`"
)

_REQUIRED_H5 = ("spikes/times", "spikes/units", "labels")
# Rows binned at once: bounds the event arrays (SSC train has ~10^8 events) and keeps the
# bincount target (rows·nb_steps·channels int64) small enough for the cache, which is 5x faster.
_CHUNK_SAMPLES = 64


@dataclass
class SpikeDataset:
    """An SHD / SSC split binned into counts ``x`` of shape (N, nb_steps, 700 // spatial_bin)."""

    x: np.ndarray
    labels: np.ndarray
    class_names: list[str] | None
    speakers: np.ndarray | None
    dropped_events: int
    nb_steps: int
    max_time: float
    spatial_bin: int


@dataclass
class InputData:
    """A (batch, time, channels) network input and what came with it."""

    x: np.ndarray
    labels: np.ndarray | None
    class_names: list[str] | None
    is_counts: bool
    source_sha256: str


def binning_preset(name: str) -> tuple[int, float]:
    """Return the (nb_steps, max_time) of a preset name in :data:`BINNING`."""
    try:
        return BINNING[name.lower()]
    except KeyError:
        raise SilifDeployError(
            f"unknown binning '{name}'; use one of {', '.join(BINNING)} or give (nb_steps, max_time)"
        ) from None


def infer_binning(path: str | os.PathLike) -> tuple[int, float]:
    """SSC 4 ms (300 steps, 1.2 s) for a file name starting with ``ssc``, else SHD (250, 1.0)."""
    return BINNING["ssc" if Path(path).name.lower().startswith("ssc") else "shd"]


@refuse_damaged("SHD/SSC file")
def read_spike_h5(
    path: str | os.PathLike, nb_steps: int, max_time: float, spatial_bin: int = 5
) -> SpikeDataset:
    """Read an SHD / SSC HDF5 file and bin it as the reference does (module docstring).

    Counts are stored in the smallest of uint8 / int16 / int32 that holds the largest count.
    """
    if nb_steps < 2 or not max_time > 0:
        raise SilifDeployError(f"binning needs nb_steps >= 2 and max_time > 0, got {nb_steps} and {max_time}")
    if spatial_bin < 1 or N_UNITS % spatial_bin:
        raise SilifDeployError(f"spatial_bin must divide {N_UNITS} (e.g. 1, 5, 7, 10), got {spatial_bin}")
    path = _require_spike_file(path)
    with h5py.File(path, "r") as f:
        missing = [name for name in _REQUIRED_H5 if name not in f]
        if missing:
            raise SilifDeployError(
                f"'{path}' lacks {', '.join(missing)}: not an SHD/SSC file (expected spikes/times, "
                "spikes/units, labels, extra/keys)"
            )
        times, units = f["spikes/times"], f["spikes/units"]
        labels = check_labels(f["labels"][()], str(path))
        if not len(times) == len(units) == len(labels):
            raise SilifDeployError(
                f"'{path}' is inconsistent: {len(times)} spikes/times rows, {len(units)} spikes/units rows, "
                f"{len(labels)} labels; the file is damaged, get it again"
            )
        class_names = _decode_strings(f["extra/keys"][()]) if "extra/keys" in f else None
        speakers = np.asarray(f["extra/speaker"][()]) if "extra/speaker" in f else None
        grid = np.linspace(0.0, max_time, nb_steps)
        # Start in uint8 and widen only when a count needs it: SSC train is 3.2 GB even in uint8.
        counts = np.zeros((len(labels), nb_steps, N_UNITS // spatial_bin), dtype=np.uint8)
        dropped = 0
        with tqdm(total=len(labels), desc=f"binning {path.name}", unit="sample", disable=len(labels) < 1000) as bar:
            for start in range(0, len(labels), _CHUNK_SAMPLES):
                stop = min(start + _CHUNK_SAMPLES, len(labels))
                chunk, chunk_dropped = _bin_chunk(times[start:stop], units[start:stop], grid, spatial_bin,
                                                  counts.shape[2], path)
                dtype = _count_dtype(int(chunk.max(initial=0)))
                if np.iinfo(dtype).max > np.iinfo(counts.dtype).max:
                    counts = counts.astype(dtype)
                counts[start:stop] = chunk
                dropped += chunk_dropped
                bar.update(stop - start)
    return SpikeDataset(
        x=counts, labels=labels, class_names=class_names,
        speakers=speakers, dropped_events=dropped, nb_steps=nb_steps, max_time=float(max_time),
        spatial_bin=spatial_bin,
    )


def load_input(
    path: str | os.PathLike,
    n_channels: int | None = None,
    binning: str | tuple[int, float] | None = None,
) -> InputData:
    """Load a network input: ``.npy`` / ``.npz`` (batch, time, channels) or an SHD/SSC ``.h5``.

    ``.npz`` files hold the array under ``input`` or ``x`` and may carry ``labels`` and
    ``class_names``. ``.h5`` files are binned with ``binning`` (a :data:`BINNING` name or
    (nb_steps, max_time)); by default SSC's 300 steps / 1.2 s when the file name starts with
    ``ssc``, else SHD's 250 / 1.0.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".h5", ".hdf5"):  # read_spike_h5 says where SHD/SSC come from
        if not p.exists():
            raise SilifDeployError(f"input '{p}' does not exist; give a .npy, .npz or SHD/SSC .h5 file")
        require_file(p, "input")
    if suffix in (".h5", ".hdf5"):
        nb_steps, max_time = (infer_binning(p) if binning is None
                              else binning_preset(binning) if isinstance(binning, str) else binning)
        data = read_spike_h5(p, nb_steps, max_time)
        x, labels, class_names = data.x, data.labels, data.class_names
    elif suffix == ".npy":
        x, labels, class_names = _load_array(lambda: np.load(p, allow_pickle=False), p), None, None
    elif suffix == ".npz":
        x, labels, class_names = _read_npz(p)
    else:
        raise SilifDeployError(f"input '{p}' has an unknown type; give a .npy, .npz or SHD/SSC .h5 file")
    x = check_input_chunk(x, str(p), n_channels)
    check_input_size(x.shape, str(p))
    if labels is not None and len(labels) != len(x):
        raise SilifDeployError(f"'{p}' has {len(labels)} labels for {len(x)} samples; fix the file")
    return InputData(x=x, labels=labels, class_names=class_names, is_counts=_is_counts(x),
                     source_sha256=sha256_file(p))


def _require_spike_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise SilifDeployError(f"'{p}' does not exist. {DATA_SOURCE_HINT}")
    if p.is_dir():
        raise SilifDeployError(f"'{p}' is a directory; give the .h5 file itself (e.g. {p / 'shd_test.h5'})")
    require_file(p, "input")
    if not h5py.is_hdf5(p):
        raise SilifDeployError(f"'{p}' is not an HDF5 file. {DATA_SOURCE_HINT}")
    return p


def _bin_chunk(times: np.ndarray, units: np.ndarray, grid: np.ndarray, spatial_bin: int,
               n_channels: int, path: Path) -> tuple[np.ndarray, int]:
    """Counts (rows, nb_steps, n_channels) of one chunk of rows, and its number of dropped events."""
    lengths = np.fromiter((len(t) for t in times), dtype=np.int64, count=len(times))
    if not np.array_equal(lengths, [len(u) for u in units]):
        raise SilifDeployError(f"'{path}': a row has different numbers of spike times and units; the file is damaged")
    shape = (len(times), len(grid), n_channels)
    if lengths.sum() == 0:
        return np.zeros(shape, dtype=np.int64), 0
    # float64 before digitize: the reference compares the stored values (float16/32, exact in
    # float64) with a float64 grid, and rounding the grid instead would move boundary events.
    t = np.concatenate(list(times)).astype(np.float64)
    check_spike_times(t, str(path))
    u = np.concatenate(list(units)).astype(np.int64)
    if u.min() < 0 or u.max() >= N_UNITS:
        raise SilifDeployError(f"'{path}' has spike unit {u.max() if u.max() >= N_UNITS else u.min()} "
                               f"outside 0…{N_UNITS - 1}; not an SHD/SSC file")
    row = np.repeat(np.arange(len(times)), lengths)
    step = np.digitize(t, grid)
    keep = step < len(grid)
    flat = (row[keep] * len(grid) + step[keep]) * n_channels + u[keep] // spatial_bin
    counts = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
    return counts, int((~keep).sum())


def _count_dtype(peak: int) -> type:
    """The smallest of uint8 / int16 / int32 holding ``peak``."""
    return next(d for d in (np.uint8, np.int16, np.int32) if peak <= np.iinfo(d).max)


def _decode_strings(values: np.ndarray) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.ravel(values)]


def _load_array(loader, p: Path) -> np.ndarray:
    try:
        return loader()
    except (ValueError, OSError, EOFError) as err:  # pickled object arrays, truncated or foreign files
        raise SilifDeployError(f"cannot read '{p}' as a numpy array ({err}); save a plain numeric array") from None


@refuse_damaged(".npz input")
def _read_npz(p: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    try:
        archive = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise SilifDeployError(f"cannot read '{p}' as .npz ({err})") from None
    with archive:
        key = next((k for k in ("input", "x") if k in archive.files), None)
        if key is None:
            raise SilifDeployError(f"'{p}' has no array 'input' or 'x' (it has: {', '.join(archive.files)})")
        x = _load_array(lambda: archive[key], p)
        labels = check_labels(_load_array(lambda: archive["labels"], p), str(p)) if "labels" in archive.files else None
        names = _decode_strings(archive["class_names"]) if "class_names" in archive.files else None
    return x, labels, names


def _is_counts(x: np.ndarray) -> bool:
    """True when every value is a non-negative integer (event counts rather than real features)."""
    if x.dtype == bool:
        return True
    if np.issubdtype(x.dtype, np.integer):
        return bool(x.size == 0 or x.min() >= 0)
    return bool(np.all(x >= 0) and np.all(x == np.floor(x)))
