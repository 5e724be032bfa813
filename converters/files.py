"""File helpers every reader and writer uses: input checks, atomic outputs, content hashes, provenance.

Outputs appear whole or not at all: :func:`atomic_output` writes one file beside its target and
renames it at the end; :func:`atomic_outputs` does the same for a set of files in any folders
(``simulate``'s results and report), :func:`staged_outputs` for a set in one folder (an export's NIR
file, artifact and reports), renaming them together once all are written. Signals: the CLI turns
SIGTERM into an exception (:func:`interrupts_raise`), so the cleanup of both runs on every exit
path, and an interrupt some library swallowed (h5py closing a file) is raised again before any
rename. Inside :func:`guard_inputs` (every CLI command) an output that is one of the command's
inputs is refused before it could replace it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import platform
import shutil
import signal
import stat
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, TypeVar

import numpy as np

from silif_deploy import PRODUCER, __version__
from silif_deploy.errors import SilifDeployError

F = TypeVar("F", bound=Callable)

_TMP_NAME_KEEP = 40
"""Characters of the target's name kept in its temporary name: with mkstemp's 8 random characters
and the affixes, a temporary name stays within NAME_MAX (255) whatever the target's length."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``finally`` (temporary files) runs."""


_pending: list[int] = []  # signals received; a writer re-raises one that a library swallowed
_inputs: set[tuple[int, int]] | None = None  # (device, inode) of the running command's inputs


def _raise_for(signum: int) -> None:
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


_deferring = False  # inside a critical section: record the signal, raise when it ends


def _on_signal(signum: int, frame: object) -> None:
    _pending.append(signum)
    if not _deferring:
        _raise_for(signum)


@contextlib.contextmanager
def _critical() -> Iterator[None]:
    """Steps that must not be cut in two (create a temporary file and note it for cleanup; move a
    staged set into place): a signal waits for the end of the block, then raises."""
    global _deferring
    outer, _deferring = _deferring, True
    try:
        yield
    finally:
        _deferring = outer
    if not outer:
        raise_pending_interrupt()


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise (KeyboardInterrupt / :class:`Terminated`) inside the block; the
    previous handlers come back after it. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    _pending.clear()
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _pending.clear()


def received_signal() -> int | None:
    """The first SIGINT/SIGTERM received inside :func:`interrupts_raise`, if any."""
    return _pending[0] if _pending else None


def raise_pending_interrupt() -> None:
    """Raise an interrupt that arrived but was swallowed (h5py ignores exceptions raised while it
    closes a file): a writer calls this before it renames a finished output into place."""
    if _pending:
        _raise_for(_pending[0])


@contextlib.contextmanager
def guard_inputs() -> Iterator[None]:
    """Record the inputs :func:`require_file` accepts inside the block; writers refuse to replace them."""
    global _inputs
    _inputs = set()
    try:
        yield
    finally:
        _inputs = None


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def refuse_overwriting_inputs(outputs: list[str | os.PathLike], inputs: list[str | os.PathLike]) -> None:
    """Fail when an output path is (resolves to, or is a link to) one of the inputs."""
    ids = {i: _file_id(Path(i)) for i in inputs}
    for out in outputs:
        o = Path(out)
        for inp, iid in ids.items():
            if o.resolve() == Path(inp).resolve() or (iid is not None and _file_id(o) == iid):
                raise SilifDeployError(f"output '{o}' is the input '{inp}'; writing it would destroy the input: "
                                       "choose another output path")


def _check_target(target: Path) -> None:
    """One line for a target that is a folder or would replace an input of the running command."""
    if target.is_dir():
        raise SilifDeployError(f"output '{target}' is a directory; give a file name")
    if _inputs and _file_id(target) in _inputs:
        raise SilifDeployError(f"output '{target}' is an input of this command; writing it would destroy the "
                               "input: choose another output path")


def _make_parent(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SilifDeployError(f"cannot create output folder '{folder}': {err.strerror or err}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SilifDeployError(f"output folder '{folder}' is not writable; choose another output path")


def _ordinary_permissions(path: Path) -> None:
    """mkstemp creates 0600; give the output the permissions an ordinary open() would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A failed or interrupted writer therefore never leaves a half-written output file (nor its
    temporary file).
    """
    with atomic_outputs(path) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_outputs(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """:func:`atomic_output` for a set of files in any folders: yield one temporary path beside each
    target; when the block succeeds, rename them all, together (a signal waits for the set, then
    removes it again), so that the files appear together or none of them."""
    targets = [Path(p) for p in paths]
    for i, target in enumerate(targets):
        twin = next((t for t in targets[:i] if t.resolve() == target.resolve()), None)
        if twin is not None:
            raise SilifDeployError(f"outputs '{twin}' and '{target}' are the same file; give distinct names")
    for target in targets:
        _check_target(target)
        _make_parent(target.parent)
    tmps: list[Path] = []
    moved: list[Path] = []
    try:
        with _critical():  # a signal here must not leave a temporary file nobody removes
            for target in targets:
                try:
                    fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:_TMP_NAME_KEEP]}.", suffix=".part",
                                               dir=target.parent)
                except OSError as err:
                    raise SilifDeployError(f"cannot write '{target}': {err.strerror or err}") from None
                os.close(fd)
                tmps.append(Path(tmp))
        for tmp in tmps:
            _ordinary_permissions(tmp)
        yield tmps
        raise_pending_interrupt()
        for target in targets:
            _check_target(target)
        with _critical():
            for tmp, target in zip(tmps, targets):
                try:
                    os.replace(tmp, target)
                except OSError as err:
                    raise SilifDeployError(f"cannot write '{target}': {err.strerror or err}") from None
                moved.append(target)
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        raise
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_outputs(outdir: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging folder inside ``outdir``; when the block succeeds, move every file written
    there into ``outdir`` together. On failure (or an interrupt) nothing of the set appears: the
    staging folder goes, files already moved are removed, and ``outdir`` too when this created it.
    """
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise SilifDeployError(f"output folder '{out}' is a file; give a folder")
    created = not out.exists()
    stage: Path | None = None
    moved: list[Path] = []
    try:
        with _critical():
            _make_parent(out)
            stage = Path(tempfile.mkdtemp(prefix=".silif-deploy-", suffix=".part", dir=out))
        yield stage
        files = sorted(p for p in stage.iterdir() if p.is_file())
        for f in files:
            _check_target(out / f.name)
        raise_pending_interrupt()
        with _critical():  # the set is moved whole: a signal waits, then removes it again
            for f in files:
                os.replace(f, out / f.name)
                moved.append(out / f.name)
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    shutil.rmtree(stage, ignore_errors=True)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_file(path: str | os.PathLike, what: str) -> Path:
    """Return ``path`` as a Path, or fail with one line when it is missing, a directory, or not a
    regular file (a named pipe or device would block the reader forever)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise SilifDeployError(f"{what} '{p}' does not exist") from None
    except OSError as err:
        raise SilifDeployError(f"{what} '{p}' cannot be read: {err.strerror or err}") from None
    if stat.S_ISDIR(st.st_mode):
        raise SilifDeployError(f"{what} '{p}' is a directory; give a file")
    if not stat.S_ISREG(st.st_mode):
        raise SilifDeployError(f"{what} '{p}' is not a regular file (a pipe, socket or device); give a file")
    if not os.access(p, os.R_OK):
        raise SilifDeployError(f"{what} '{p}' is not readable (permission denied)")
    if _inputs is not None:
        _inputs.add((st.st_dev, st.st_ino))
    return p


def require_npz(path: str | os.PathLike, what: str) -> None:
    """Refuse a file that is no .npz archive before numpy reads it: ``np.load`` takes any bytes
    that are neither a zip archive nor a .npy array for a pickle, and its error advises unpickling."""
    with open(path, "rb") as fh:
        magic = fh.read(len(np.lib.format.MAGIC_PREFIX))
    if magic == np.lib.format.MAGIC_PREFIX:
        raise SilifDeployError(f"'{path}' is a single .npy array, not a {what}")
    if not zipfile.is_zipfile(path):
        raise SilifDeployError(f"'{path}' is not a {what}: it is no zip archive (numpy.savez writes one); check the file")


def created_utc() -> str:
    """Now in UTC, or ``SOURCE_DATE_EPOCH`` when set (reproducible builds: the same inputs give the same bytes)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        try:
            when = datetime.fromtimestamp(int(epoch), timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise SilifDeployError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got '{epoch}'") from None
    else:
        when = datetime.now(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def provenance(**inputs: object) -> dict[str, object]:
    """The provenance record written into every output: producer, version, time, and the inputs.

    Callers pass input hashes and the hardware profile name, e.g.
    ``provenance(source_sha256=..., hardware_profile="loihi2")``.
    """
    record: dict[str, object] = {
        "producer": PRODUCER,
        "producer_version": __version__,
        "created_utc": created_utc(),
        "python": platform.python_version(),
    }
    record.update({k: v for k, v in inputs.items() if v is not None})
    return record


_READ_ERRORS = (OSError, EOFError, KeyError, IndexError, TypeError, ValueError, AttributeError, AssertionError, RuntimeError,
                zipfile.BadZipFile, zlib.error)
"""What numpy, zipfile, h5py and nir raise on a truncated, foreign or edited file (nir asserts on
node types and reads attributes of whatever it finds)."""


def refuse_damaged(what: str) -> Callable[[F], F]:
    """Decorate a reader whose first argument is the path: a library error on a damaged file
    becomes one line naming the file (a :class:`SilifDeployError` passes through)."""

    def wrap(reader: F) -> F:
        @functools.wraps(reader)
        def read(path, *args, **kwargs):
            with damaged_file_errors(path, what), np.errstate(all="ignore"):  # hostile values are refused, not warned about
                return reader(path, *args, **kwargs)

        return read  # type: ignore[return-value]

    return wrap


@contextlib.contextmanager
def damaged_file_errors(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Inside the block, a library error on a damaged file becomes one line naming the file (what
    :func:`refuse_damaged` does for a whole reader; chunked readers wrap each pass in it)."""
    try:
        yield
    except SilifDeployError:
        raise
    except _READ_ERRORS as err:
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise SilifDeployError(f"'{path}' is not a readable {what} ({detail}); check the file") from None
