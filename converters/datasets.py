"""Readers for the inputs users have: SHD / SSC spike files and (batch, time, channels) arrays.

The SHD / SSC binning reproduces the authors' ``SpikingDataset`` (``neurons.md`` §13.1)::

    grid = linspace(0, max_time, nb_steps)          # nb_steps points, both ends included
    step = digitize(t, grid)                        # grid[k-1] <= t < grid[k]  ->  step k
    x[sample, step, unit // spatial_bin] += 1       # event counts; 700 units -> 700/spatial_bin

so the bin width is max_time / (nb_steps - 1), step 0 only receives t < 0 (never, for real files),
and events with t >= max_time (step == nb_steps) are dropped explicitly and counted.

**Streaming.** :func:`open_input` opens any input as an :class:`InputSource` that reads it chunk
by chunk (``.npy`` by positioned reads at the offsets its memory map gives, ``.npz`` members as
streams, SHD/SSC files binned 64 rows at a time), so a pass over a data set holds one chunk,
whatever its length. Every chunk of every pass enters through :meth:`InputSource._enter`: the one
place where input values are checked. :func:`load_input` reads a whole input into memory.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from silif_deploy.converters.files import damaged_file_errors, refuse_damaged, require_file, require_npz, sha256_file
from silif_deploy.converters.input_checks import (
    check_input_chunk, check_input_header, check_input_size, check_labels, check_spike_times,
)
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
    _check_binning(nb_steps, max_time, spatial_bin)
    path = _require_spike_file(path)
    labels, class_names, speakers = _spike_h5_header(path)
    # Start in uint8 and widen only when a count needs it: SSC train is 3.2 GB even in uint8.
    counts = np.zeros((len(labels), nb_steps, N_UNITS // spatial_bin), dtype=np.uint8)
    dropped = [0]
    start = 0
    with tqdm(total=len(labels), desc=f"binning {path.name}", unit="sample", disable=len(labels) < 1000) as bar:
        for chunk in _spike_h5_chunks(path, nb_steps, max_time, spatial_bin, dropped):
            if np.iinfo(chunk.dtype).max > np.iinfo(counts.dtype).max:
                counts = counts.astype(chunk.dtype)
            counts[start : start + len(chunk)] = chunk
            start += len(chunk)
            bar.update(len(chunk))
    return SpikeDataset(
        x=counts, labels=labels, class_names=class_names,
        speakers=speakers, dropped_events=dropped[0], nb_steps=nb_steps, max_time=float(max_time),
        spatial_bin=spatial_bin,
    )


def open_input(
    path: str | os.PathLike,
    n_channels: int | None = None,
    binning: str | tuple[int, float] | None = None,
    max_count: int | None = None,
) -> "InputSource":
    """Open a network input for reading in chunks: ``.npy`` / ``.npz`` (batch, time, channels) or an
    SHD/SSC ``.h5``.

    ``.npz`` files hold the array under ``input`` or ``x`` and may carry ``labels`` and
    ``class_names``. ``.h5`` files are binned with ``binning`` (a :data:`BINNING` name or
    (nb_steps, max_time)); by default SSC's 300 steps / 1.2 s when the file name starts with
    ``ssc``, else SHD's 250 / 1.0. ``max_count`` (for an artifact quantized for counts) refuses
    values that are not event counts of at most ``max_count``. Shape, dtype, channels and labels
    are checked here; values chunk by chunk as they are read.
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
        _check_binning(nb_steps, max_time, 5)
        p = _require_spike_file(p)
        labels, class_names, _ = _spike_h5_header(p)
        shape, dtype = (len(labels), nb_steps, N_UNITS // 5), np.dtype(np.uint8)
        source = InputSource(p, shape, dtype, labels, class_names,
                             lambda size: _spike_h5_chunks(p, nb_steps, max_time, 5, [0], size))
    elif suffix == ".npy":
        shape, dtype, read = _npy_reader(p)
        source = InputSource(p, shape, dtype, None, None, read)
    elif suffix == ".npz":
        source = _npz_source(p)
    else:
        raise SilifDeployError(f"input '{p}' has an unknown type; give a .npy, .npz or SHD/SSC .h5 file")
    source.max_count = max_count
    check_input_header(source.shape, source.dtype, str(p), n_channels)
    check_input_size(source.shape, str(p))
    if source.labels is not None:  # labels enter here, once per file (values enter in InputSource._enter)
        _check_labels(source.labels, source.shape[0], p)
    return source


def load_input(
    path: str | os.PathLike,
    n_channels: int | None = None,
    binning: str | tuple[int, float] | None = None,
) -> InputData:
    """Load a whole network input into memory (:func:`open_input` reads it in chunks)."""
    source = open_input(path, n_channels=n_channels, binning=binning)
    x = source.read_all()
    return InputData(x=x, labels=source.labels, class_names=source.class_names, is_counts=source.is_counts,
                     source_sha256=source.source_sha256)


@dataclass
class InputStats:
    """What a pass learned about the values: all event counts (non-negative integers)? the largest |value|."""

    is_counts: bool = True
    peak: float = 0.0

    @classmethod
    def of(cls, x: np.ndarray) -> "InputStats":
        if x.size == 0:
            return cls()
        lo, hi = float(np.min(x)), float(np.max(x))  # not np.abs: it overflows on the most negative integer
        return cls(is_counts=lo >= 0 and (not np.issubdtype(x.dtype, np.floating) or bool(np.all(x == np.floor(x)))),
                   peak=max(abs(lo), abs(hi)))

    def add(self, other: "InputStats") -> None:
        """Fold in the stats of another chunk of the same pass."""
        self.is_counts = self.is_counts and other.is_counts
        self.peak = max(self.peak, other.peak)


@dataclass
class InputSource:
    """A (samples, steps, channels) input read chunk by chunk, in order, as often as needed.

    ``read(size)`` yields the raw chunks of one pass; :meth:`chunks` checks each as it enters.
    ``stats`` (counts? peak?) is complete after a full pass (reading one when asked before).
    """

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    labels: np.ndarray | None
    class_names: list[str] | None
    read: Callable[[int], Iterator[np.ndarray]]
    max_count: int | None = None
    """Set: the values must be event counts (non-negative integers) of at most this."""
    _stats: InputStats | None = field(default=None, repr=False)
    _sha256: Future | str | None = field(default=None, repr=False)

    @classmethod
    def from_array(cls, x: np.ndarray, labels: np.ndarray | None = None, name: str = "<array>",
                   sha256: str | None = None) -> "InputSource":
        """An input already in memory (a synthetic probe, a test's array)."""
        return cls(Path(name), tuple(x.shape), x.dtype, labels, None, _array_reader(x), _sha256=sha256)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.shape[0]

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """One pass over the samples, ``size`` at a time (the last chunk may be shorter)."""
        stats, seen = InputStats(), 0
        for x in self._read_checked(size):
            x, chunk_stats = self._enter(x)
            stats.add(chunk_stats)
            seen += len(x)
            yield x
        if seen != self.shape[0]:
            raise SilifDeployError(f"'{self.path}' ended after {seen} of {self.shape[0]} samples; the file is damaged")
        self._stats = stats

    def batches(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """:meth:`chunks` with each chunk's labels (None without labels)."""
        at = 0
        for x in self.chunks(size):
            yield x, None if self.labels is None else self.labels[at : at + len(x)]
            at += len(x)

    def _read_checked(self, size: int) -> Iterator[np.ndarray]:
        """The raw chunks of one pass; a library error on a damaged file while reading is one line."""
        with damaged_file_errors(self.path, "input file"):
            yield from self.read(size)

    def _enter(self, x: np.ndarray) -> tuple[np.ndarray, InputStats]:
        """Every chunk of every pass enters here: the one place where input values are checked
        (float16 comes out widened to float32, see :func:`check_input_chunk`). Returns the chunk and
        its stats, computed once for the checks and the pass's :attr:`stats`."""
        x = check_input_chunk(x, str(self.path))
        stats = InputStats.of(x)
        if self.max_count is not None:
            if not stats.is_counts:
                raise SilifDeployError(
                    "input holds negative or fractional values, but this artifact takes event counts (non-negative "
                    "integers); fix the input, or re-export with --calibrate on real-valued data"
                )
            if stats.peak > self.max_count:
                raise SilifDeployError(
                    f"input holds counts up to {stats.peak:.6g}, but this artifact's input payload carries at most "
                    f"{self.max_count} per step and channel; bin the events more finely or re-export with a wider "
                    "input_message_bits"
                )
        return x, stats

    @property
    def stats(self) -> InputStats:
        if self._stats is None:
            for _ in self.chunks(256):
                pass
        return self._stats  # type: ignore[return-value]

    @property
    def is_counts(self) -> bool:
        return self.stats.is_counts

    @property
    def source_sha256(self) -> str | None:
        """SHA-256 of the input file, hashed in a thread from the first time it is asked for, so
        that reading the file twice overlaps the run (None for an array without a given hash)."""
        if self._sha256 is None and self.path.is_file():
            self.start_hashing()
        if isinstance(self._sha256, Future):
            self._sha256 = self._sha256.result()
        return self._sha256

    def start_hashing(self) -> None:
        """Start hashing the file in a thread (hashlib releases the GIL); :attr:`source_sha256` waits for it."""
        if self._sha256 is None and self.path.is_file():
            pool = ThreadPoolExecutor(1)
            self._sha256 = pool.submit(sha256_file, self.path)
            pool.shutdown(wait=False)

    def read_all(self) -> np.ndarray:
        """Every sample in one array (memory grows with the input: for small inputs and tests)."""
        parts = list(self.chunks(256))
        if not parts:
            return np.zeros(self.shape, self.dtype)
        dtype = np.result_type(*(part.dtype for part in parts))
        return np.concatenate(parts).astype(dtype, copy=False)


def _check_binning(nb_steps: int, max_time: float, spatial_bin: int) -> None:
    if nb_steps < 2 or not max_time > 0:
        raise SilifDeployError(f"binning needs nb_steps >= 2 and max_time > 0, got {nb_steps} and {max_time}")
    if spatial_bin < 1 or N_UNITS % spatial_bin:
        raise SilifDeployError(f"spatial_bin must divide {N_UNITS} (e.g. 1, 5, 7, 10), got {spatial_bin}")


@refuse_damaged("SHD/SSC file")
def _spike_h5_header(path: Path) -> tuple[np.ndarray, list[str] | None, np.ndarray | None]:
    """(labels, class names, speakers) of an SHD/SSC file, after checking its layout."""
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
    return labels, class_names, speakers


def _spike_h5_chunks(path: Path, nb_steps: int, max_time: float, spatial_bin: int, dropped: list[int],
                     size: int = _CHUNK_SAMPLES) -> Iterator[np.ndarray]:
    """Binned counts of an SHD/SSC file, ``size`` rows at a time, each chunk in the smallest of
    uint8 / int16 / int32 holding its counts; ``dropped[0]`` accumulates the dropped events."""
    grid = np.linspace(0.0, max_time, nb_steps)
    with h5py.File(path, "r") as f:
        times, units = f["spikes/times"], f["spikes/units"]
        n = len(times)
        for outer in range(0, n, size):
            stop = min(outer + size, n)
            parts = []  # binned _CHUNK_SAMPLES rows at a time, whatever ``size``
            for start in range(outer, stop, _CHUNK_SAMPLES):
                end = min(start + _CHUNK_SAMPLES, stop)
                chunk, chunk_dropped = _bin_chunk(times[start:end], units[start:end], grid, spatial_bin,
                                                  N_UNITS // spatial_bin, path)
                parts.append(chunk)
                dropped[0] += chunk_dropped
            counts = parts[0] if len(parts) == 1 else np.concatenate(parts)
            yield counts.astype(_count_dtype(int(counts.max(initial=0))))


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


def _npy_reader(p: Path) -> tuple[tuple[int, ...], np.dtype, Callable[[int], Iterator[np.ndarray]]]:
    """Shape, dtype and chunk reader of a ``.npy`` file.

    The memory map checks the header and the file's length and gives the data offset; chunks are
    then read with positioned reads, so that pages read once do not stay resident as a map's would
    (the process's memory stays one chunk, however large the file)."""
    mapped = _load_array(lambda: np.load(p, mmap_mode="r", allow_pickle=False), p)
    shape, dtype = mapped.shape, mapped.dtype
    if not isinstance(mapped, np.memmap) or len(shape) != 3 or not mapped.flags.c_contiguous:
        return shape, dtype, _array_reader(mapped)  # a 0-size or Fortran-ordered array: copied from the map
    offset, row = mapped.offset, int(np.prod(shape[1:]))
    del mapped

    def read(size: int) -> Iterator[np.ndarray]:
        with open(p, "rb") as fh:
            for start in range(0, shape[0], size):
                n = min(size, shape[0] - start)
                fh.seek(offset + start * row * dtype.itemsize)
                yield np.fromfile(fh, dtype=dtype, count=n * row).reshape(n, *shape[1:])

    return shape, dtype, read


def _array_reader(x: np.ndarray) -> Callable[[int], Iterator[np.ndarray]]:
    """Chunk reader of an array (copies, so that a memory map's chunks are plain arrays)."""
    return lambda size: (np.array(x[i : i + size]) for i in range(0, len(x), size))


@refuse_damaged(".npz input")
def _npz_source(p: Path) -> InputSource:
    """An ``.npz`` input: the ``input`` / ``x`` member streamed (zlib-compressed or not), labels in memory."""
    require_npz(p, ".npz input")
    try:
        archive = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise SilifDeployError(f"cannot read '{p}' as .npz ({err})") from None
    with archive:
        key = next((k for k in ("input", "x") if k in archive.files), None)
        if key is None:
            raise SilifDeployError(f"'{p}' has no array 'input' or 'x' (it has: {', '.join(archive.files)})")
        labels = check_labels(_load_array(lambda: archive["labels"], p), str(p)) if "labels" in archive.files else None
        names = _decode_strings(archive["class_names"]) if "class_names" in archive.files else None
    member = f"{key}.npy"

    def header(stream) -> tuple[tuple[int, ...], bool, np.dtype]:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return read_header(stream)

    try:
        with zipfile.ZipFile(p) as zf, zf.open(member) as stream:
            shape, fortran, dtype = header(stream)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as err:
        raise SilifDeployError(f"cannot read '{p}' as .npz ({err})") from None
    if fortran or dtype.hasobject or len(shape) != 3:  # rare layouts: read whole, as np.load does
        x = _load_array(lambda: np.load(p, allow_pickle=False)[key], p)
        return InputSource(p, x.shape, x.dtype, labels, names, _array_reader(x))
    row = int(np.prod(shape[1:]))

    def read(size: int) -> Iterator[np.ndarray]:
        with zipfile.ZipFile(p) as zf, zf.open(member) as stream:
            header(stream)
            for start in range(0, shape[0], size):
                n = min(size, shape[0] - start)
                buffer = bytearray(n * row * dtype.itemsize)  # writable, unlike bytes (torch needs that)
                if stream.readinto(buffer) != len(buffer):
                    raise SilifDeployError(f"'{p}': '{key}' is truncated; the file is damaged")
                yield np.frombuffer(buffer, dtype=dtype).reshape(n, *shape[1:])

    return InputSource(p, shape, dtype, labels, names, read)


def _check_labels(labels: np.ndarray, n_samples: int, p: Path) -> None:
    if len(labels) != n_samples:
        raise SilifDeployError(f"'{p}' has {len(labels)} labels for {n_samples} samples; fix the file")


