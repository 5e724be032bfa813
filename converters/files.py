"""File helpers every writer uses: atomic output, content hashes, provenance records."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from silif_deploy import PRODUCER, __version__
from silif_deploy.errors import SilifDeployError


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A failed or interrupted writer therefore never leaves a half-written output file.
    """
    target = Path(path)
    if target.parent and not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the output the permissions an ordinary open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_file(path: str | os.PathLike, what: str) -> Path:
    """Return ``path`` as a Path, or fail with one line when it is missing or a directory."""
    p = Path(path)
    if not p.exists():
        raise SilifDeployError(f"{what} '{p}' does not exist")
    if p.is_dir():
        raise SilifDeployError(f"{what} '{p}' is a directory; give a file")
    return p


def provenance(**inputs: object) -> dict[str, object]:
    """The provenance record written into every output: producer, version, time, and the inputs.

    Callers pass input hashes and the hardware profile name, e.g.
    ``provenance(source_sha256=..., hardware_profile="loihi2")``.
    """
    record: dict[str, object] = {
        "producer": PRODUCER,
        "producer_version": __version__,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
    }
    record.update({k: v for k, v in inputs.items() if v is not None})
    return record
