"""Data sets as sample ranges, run as Dask tasks (or in this process without Dask).

A task names its data by path (or URL) and sample range, ``(path, start, stop)``: the worker reads
the samples itself (:func:`read_shard`), so no array travels from the client, and a cluster whose
workers see the same file system (a laptop, a SLURM allocation, a Kubernetes volume) runs the same
work. Shards are fixed by ``shard_size`` alone, never by the number of workers, and results are
combined in shard order: the same input gives the same bytes on any cluster.

:func:`dask_client` opens the cluster a command runs on: ``--scheduler ADDRESS`` (or the
``DASK_SCHEDULER_ADDRESS`` environment variable, Dask's own) connects to an existing one; else an
embedded ``LocalCluster`` starts with ``workers`` single-threaded worker processes (default one
per core); ``workers=0`` gives no client, and the work runs in this process.
:func:`run_graph` runs a list of :class:`Task` on either, with a progress bar of tasks done across
the cluster. :func:`iter_shards` / :func:`map_shards` are the one-model helpers ``simulate``,
``report`` and ``verify --data`` call for ``--scheduler``, with the shard functions below.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from silif_deploy.converters.datasets import InputData, load_input
from silif_deploy.deploy.batching import BATCH_SIZE
from silif_deploy.errors import SilifDeployError

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
CONNECT_TIMEOUT_S = 20
"""How long to keep trying an existing scheduler before saying it cannot be reached."""
DEFAULT_SHARD_SIZE = 256


def default_workers() -> int:
    """One worker process per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def shard_ranges(samples: int, shard_size: int = DEFAULT_SHARD_SIZE) -> list[tuple[int, int]]:
    """[start, stop) ranges of ``shard_size`` samples (the last may be shorter) covering ``samples``."""
    if shard_size < 1:
        raise SilifDeployError(f"shard size must be at least 1 sample, got {shard_size}")
    return [(start, min(start + shard_size, samples)) for start in range(0, samples, shard_size)]


# --------------------------------------------------------------------------------------------
# Reading on the worker.


@dataclass(frozen=True)
class DataInfo:
    """What the client needs to know of a data file to plan its shards (read on a worker)."""

    samples: int
    steps: int
    channels: int
    labelled: bool
    is_counts: bool
    sha256: str


def _identity(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return os.path.abspath(path), st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=2)
def _loaded(identity: tuple[str, int, int], binning: str | tuple[int, float] | None) -> InputData:
    """The whole file, read and validated once per worker process (keyed by size and mtime, so a
    rewritten file is read again); its tasks then slice it."""
    return load_input(identity[0], binning=binning)


def is_url(path: str | os.PathLike) -> bool:
    return "://" in str(path)


def local_copy(url: str) -> str:
    """A local copy of the file at ``url``, fetched once per machine by fsspec (a dependency of
    Dask): ``file://`` always; ``s3://``, ``gs://``, ``https://`` with s3fs, gcsfs or aiohttp."""
    import hashlib
    import tempfile

    import fsspec

    # one folder per URL: same_names keeps the file name (load_input reads the format from its
    # suffix) without two URLs' files of one name meeting; check_files fetches a changed file again
    cache = os.path.join(tempfile.gettempdir(), "silif-deploy-data", hashlib.sha256(url.encode()).hexdigest()[:16])
    try:
        return fsspec.open_local(f"filecache::{url}", filecache={"cache_storage": cache, "same_names": True,
                                                                  "check_files": True})
    except (ImportError, OSError, ValueError) as err:
        raise SilifDeployError(f"cannot fetch '{url}' ({type(err).__name__}: {err}); give a path or a URL fsspec can "
                               "open (file://, or s3:// / gs:// / https:// with s3fs / gcsfs / aiohttp installed)") from None


def load_cached(path: str | os.PathLike, binning: str | tuple[int, float] | None = None) -> InputData:
    local = local_copy(str(path)) if is_url(path) else str(path)
    if not Path(local).is_file():
        load_input(local, binning=binning)  # the reader's own one-line error for a missing input
    return _loaded(_identity(local), binning)


def inspect_data(path: str | os.PathLike, binning: str | tuple[int, float] | None = None) -> DataInfo:
    data = load_cached(path, binning)
    n, steps, channels = data.x.shape
    return DataInfo(n, steps, channels, data.labels is not None, data.is_counts, data.source_sha256)


def read_shard(path: str | os.PathLike, start: int, stop: int,
               binning: str | tuple[int, float] | None = None) -> InputData:
    """Samples [start, stop) of a data file (any :func:`~silif_deploy.converters.datasets.load_input` format)."""
    data = load_cached(path, binning)
    return InputData(x=data.x[start:stop], labels=None if data.labels is None else data.labels[start:stop],
                     class_names=data.class_names, is_counts=data.is_counts, source_sha256=data.source_sha256)


@contextlib.contextmanager
def single_threaded_float() -> Iterator[None]:
    """Run a task's float (torch) kernels on one thread, and its simulator on one thread when on a
    Dask worker (each worker thread runs a task: one thread each fills the cores, no more).

    Torch on one thread everywhere: a float result must not depend on the machine that ran it.
    The simulator's threads cannot change a result (samples share no state).
    """
    import numba

    torch = _torch()
    before = torch.get_num_threads() if torch is not None else None
    numba_before = numba.get_num_threads()
    if torch is not None:
        torch.set_num_threads(1)
    if _on_dask_worker():
        numba.set_num_threads(1)  # per thread in numba
    try:
        yield
    finally:
        numba.set_num_threads(numba_before)
        if torch is not None:
            torch.set_num_threads(before)


def _torch():
    """The torch module when it is installed (the float side), else None."""
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        import torch

        return torch
    return None


def _on_dask_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
        return True
    except (ImportError, ValueError):
        return False


# --------------------------------------------------------------------------------------------
# Clusters.


SCHEDULER_HELP = (f"an existing Dask scheduler: tcp://HOST:8786, or the JSON file `dask scheduler --scheduler-file` "
                  f"wrote (default: ${SCHEDULER_ENV} when set); see docs/scaling.md")


def add_scheduler_argument(p, shard_size: bool = False) -> None:
    """The ``--scheduler`` option every command that shards its data takes (and, with
    ``shard_size``, ``--shard-size``: ``sweep`` words its own)."""
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help=SCHEDULER_HELP)
    if shard_size:
        from silif_deploy.deploy.arg_types import positive_int

        p.add_argument("--shard-size", type=positive_int, default=DEFAULT_SHARD_SIZE,
                       help=f"with --scheduler: samples per task (default {DEFAULT_SHARD_SIZE})")


def scheduler_address(given: str | None) -> str | None:
    """``--scheduler``'s value, else ``$DASK_SCHEDULER_ADDRESS``, else None (no existing cluster)."""
    return given or os.environ.get(SCHEDULER_ENV) or None


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``; a ``.json``
    path is a scheduler file), else for an embedded ``LocalCluster`` of ``workers`` processes
    (default :func:`default_workers`); None for ``workers=0`` (run in this process)."""
    scheduler = scheduler_address(scheduler)
    if scheduler is None and workers == 0:
        yield None
        return
    if workers is not None and workers < 0:
        raise SilifDeployError(f"--workers must be 0 (no Dask) or more, got {workers}")
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - a dependency of the package
        raise SilifDeployError("Dask's distributed package is missing; pip install 'distributed' or use --workers 0") from None
    if scheduler is not None:
        try:
            if scheduler.endswith(".json"):
                client = Client(scheduler_file=scheduler, timeout=CONNECT_TIMEOUT_S)
            else:
                client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as err:
            raise SilifDeployError(f"cannot reach the Dask scheduler at '{scheduler}' ({err}); start one with "
                                   "`dask scheduler` and workers with `dask worker ADDRESS`, or drop --scheduler") from None
        with client:
            yield client
        return
    # One single-threaded process per core: the simulator and torch each run one thread per task.
    with LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def describe_client(client) -> dict[str, Any]:
    """Where the work ran: no Dask, or the scheduler's address and its workers' threads."""
    if client is None:
        return {"dask": False, "workers": 0}
    info = client.scheduler_info()
    return {"dask": True, "scheduler": client.scheduler.address, "workers": len(info["workers"]),
            "threads": sum(w["nthreads"] for w in info["workers"].values())}


# --------------------------------------------------------------------------------------------
# Task graphs.


@dataclass(frozen=True)
class Ref:
    """An argument that is the result of the task ``key``."""

    key: str


@dataclass
class Task:
    """``fn(*args)`` with every :class:`Ref` in ``args`` (or in a list among them) replaced by that
    task's result. Tasks are listed after the tasks they use."""

    key: str
    fn: Callable[..., Any]
    args: tuple = ()
    uses: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.uses = [a.key for a in _flatten(self.args) if isinstance(a, Ref)]


def _flatten(args: Sequence[Any]) -> Iterator[Any]:
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from _flatten(a)
        else:
            yield a


def _substitute(args: Any, results: dict[str, Any]) -> Any:
    if isinstance(args, Ref):
        return results[args.key]
    if isinstance(args, (list, tuple)):
        return type(args)(_substitute(a, results) for a in args)
    return args


@dataclass
class TaskRecord:
    """When and where one task ran: ``compute`` is the function's own time; ``other_s`` the time the
    worker spent on it besides (fetching its inputs, unpickling them)."""

    key: str
    worker: str
    start: float
    stop: float
    other_s: float = 0.0

    @property
    def kind(self) -> str:
        return self.key.split("/", 1)[0]


@dataclass
class GraphRun:
    """The results asked for, a record per task run (a retried task has one per try), and the
    wall time from the first submission to the last result."""

    results: dict[str, Any]
    records: list[TaskRecord]
    wall_s: float

    def seconds_by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in self.records:
            out[r.kind] = out.get(r.kind, 0.0) + (r.stop - r.start)
        return out


def run_graph(client, tasks: list[Task], outputs: list[str], desc: str = "tasks") -> GraphRun:
    """Run ``tasks`` on ``client`` (None: in this process, in list order); return ``outputs``' results.

    A result is dropped once every task using it has run, so memory holds what pending tasks need.
    On Dask a lost worker's tasks are recomputed by the scheduler; a task that raises re-raises here.
    """
    from tqdm import tqdm

    pending = {t.key: 0 for t in tasks}
    for t in tasks:
        for key in t.uses:
            pending[key] += 1
    keep = set(outputs)
    started = time.perf_counter()
    with tqdm(total=len(tasks), desc=desc, unit="task") as bar:
        run = _run_here if client is None else _run_dask
        results, records = run(client, tasks, pending, keep, bar)
    return GraphRun(results, records, time.perf_counter() - started)


def _run_here(client, tasks: list[Task], pending: dict[str, int], keep: set[str], bar):
    results: dict[str, Any] = {}
    records = []
    for t in tasks:
        start = time.perf_counter()
        results[t.key] = t.fn(*_substitute(t.args, results))
        records.append(TaskRecord(t.key, "local", start, time.perf_counter()))
        for key in t.uses:
            pending[key] -= 1
            if not pending[key] and key not in keep:
                del results[key]
        bar.update(1)
    return {key: results[key] for key in keep}, records


def _run_dask(client, tasks: list[Task], pending: dict[str, int], keep: set[str], bar):
    from distributed import as_completed, get_task_stream

    futures: dict[str, Any] = {}
    uses = {t.key: t.uses for t in tasks}
    outputs: dict[str, Any] = {}
    with get_task_stream(client) as stream:
        for t in tasks:  # submitted in list order: Dask runs earlier submissions first
            futures[t.key] = client.submit(t.fn, *_substitute(t.args, futures), key=t.key, pure=False)
        for future in as_completed(list(futures.values())):
            if future.status == "error":
                future.result()  # re-raises the task's exception
            if future.key in keep:
                outputs[future.key] = future
            for key in uses[future.key]:
                pending[key] -= 1
                if not pending[key] and key not in keep:
                    futures.pop(key, None)  # the cluster frees it once nothing refers to it
            bar.update(1)
        results = dict(zip(outputs, client.gather(list(outputs.values()))))
    return results, [_record(r) for r in stream.data if any(s["action"] == "compute" for s in r["startstops"])]


def _record(entry: dict[str, Any]) -> TaskRecord:
    compute = next(s for s in entry["startstops"] if s["action"] == "compute")
    other = sum(s["stop"] - s["start"] for s in entry["startstops"] if s["action"] != "compute")
    return TaskRecord(str(entry["key"]), str(entry["worker"]), compute["start"], compute["stop"], other)


# --------------------------------------------------------------------------------------------
# One model over a data file: what ``simulate``, ``report`` and ``verify --data`` run for --scheduler.


def iter_shards(client, fn: Callable[..., Any], data_path: str | os.PathLike, *args: Any,
                shard_size: int = DEFAULT_SHARD_SIZE, binning: str | tuple[int, float] | None = None,
                desc: str = "shards") -> Iterator[Any]:
    """``fn(read_shard(data_path, start, stop, binning), *args)`` for every shard, yielded in shard
    order as they come in (a streaming writer keeps one shard's outputs in memory at a time).

    ``fn`` must be importable on the workers (a module-level function, e.g. :func:`simulate_shard`,
    :func:`evaluate_shard`, :func:`predictions_shard`); ``client`` None runs in this process.
    """
    from tqdm import tqdm

    info = on_worker(client, inspect_data, str(data_path), binning)
    ranges = shard_ranges(info.samples, shard_size)
    token = uuid.uuid4().hex[:8]  # keys unique on a shared scheduler
    name = getattr(fn, "__name__", "shard")
    calls = [(fn, str(data_path), start, stop, binning, args) for start, stop in ranges]
    with tqdm(total=len(calls), desc=desc, unit="shard", disable=len(calls) < 2) as bar:
        if client is None:
            for call in calls:
                yield _shard_call(*call)
                bar.update(1)
            return
        futures = [client.submit(_shard_call, *call, key=f"{name}/{call[2]}-{call[3]}-{token}", pure=False)
                   for call in calls]
        for k in range(len(futures)):
            result, futures[k] = futures[k].result(), None  # dropped: the cluster frees it
            yield result
            bar.update(1)


def map_shards(client, fn: Callable[..., Any], data_path: str | os.PathLike, *args: Any,
               shard_size: int = DEFAULT_SHARD_SIZE, binning: str | tuple[int, float] | None = None,
               desc: str = "shards") -> list[Any]:
    """:func:`iter_shards` as a list."""
    return list(iter_shards(client, fn, data_path, *args, shard_size=shard_size, binning=binning, desc=desc))


def on_worker(client, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a worker (it reads the files there), or here without a client."""
    return fn(*args) if client is None else client.submit(fn, *args, pure=False).result()


def inspect_input(client, data_path: str | os.PathLike, n_channels: int,
                  binning: str | tuple[int, float] | None = None) -> DataInfo:
    """:func:`inspect_data` on a worker, refusing an input whose channels the model does not take."""
    info = on_worker(client, inspect_data, str(data_path), binning)
    if info.channels != n_channels:
        raise SilifDeployError(f"input '{data_path}' has {info.channels} channels but the model expects {n_channels}; "
                               "check the input file or binning")
    return info


def _shard_call(fn, data_path: str, start: int, stop: int, binning, args: tuple) -> Any:
    with single_threaded_float():
        return fn(read_shard(data_path, start, stop, binning), *args)


@functools.lru_cache(maxsize=4)
def _network(path: str, identity: tuple[str, int, int], profile: str | None, model_type: str | None):
    from silif_deploy.deploy.accuracy_check import fixed_network
    from silif_deploy.deploy.engines import load_float_model, source_kind

    model = load_float_model(path, model_type=model_type) if source_kind(path) != "artifact" or profile else None
    return fixed_network(path, model, profile)


@functools.lru_cache(maxsize=4)
def _float_model(path: str, identity: tuple[str, int, int], model_type: str | None):
    from silif_deploy.deploy.engines import load_float_model

    return load_float_model(path, model_type=model_type)


def cached_float_model(path: str, model_type: str | None = None):
    """The float model of ``path``, loaded once per worker process (again when the file changes)."""
    return _float_model(path, _identity(path), model_type)


def simulate_shard(data: InputData, model_path: str, engine: str | None = None, model_type: str | None = None,
                   record_states: bool = False, batch_size: int = BATCH_SIZE, keep_spikes: bool = True):
    """``simulate``'s run of one shard: (:class:`~silif_deploy.hw_models.run_result.RunResult`, labels
    or None), its input checked as ``simulate`` checks it (counts only, payload) batch by batch."""
    from silif_deploy.converters.datasets import InputSource
    from silif_deploy.deploy.batching import batches
    from silif_deploy.deploy.engines import open_engine
    from silif_deploy.hw_models.run_result import RunResult

    opened = open_engine(model_path, engine, model_type=model_type, record_states=record_states, keep_spikes=keep_spikes)
    source = InputSource.from_array(data.x)
    source.max_count = opened.max_count
    return RunResult.concatenate([opened.run(x) for x, _ in batches(source, None, batch_size)]), data.labels


def evaluate_shard(data: InputData, artifact_path: str):
    """``report``'s evaluation of one shard: a :class:`~silif_deploy.deploy.report_builder.Evaluation`
    (fixed point against the artifact's float model, when it carries one and torch is here)."""
    import importlib.util

    from silif_deploy.converters.artifact import read_artifact
    from silif_deploy.converters.datasets import InputSource
    from silif_deploy.deploy.report_builder import evaluate
    from silif_deploy.hw_models import metrics
    from silif_deploy.hw_models.simulator import simulate

    network = read_artifact(artifact_path)
    reference = None
    if network.float_model is not None and importlib.util.find_spec("torch") is not None:
        reference = cached_float_model(artifact_path).run
    return evaluate(metrics.describe_fixed(network), InputSource.from_array(data.x, data.labels),
                    lambda xb: simulate(network, xb), reference, desc="shard")


def predictions_shard(data: InputData, model_path: str, profile: str | None = None,
                      model_type: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``verify --data``'s run of one shard: (labels, float predictions, fixed-point predictions)."""
    from silif_deploy.hw_models.simulator import simulate

    if data.labels is None:
        raise SilifDeployError("the data has no labels; --data needs labelled samples (.h5, or .npz with 'labels')")
    model = cached_float_model(model_path, model_type)
    network = _network(model_path, _identity(model_path), profile, model_type)
    return data.labels, model.run(data.x).prediction, simulate(network, data.x).prediction
