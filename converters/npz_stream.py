"""An ``.npz`` archive written block by block, in memory one block whatever the number of rows.

``np.savez`` needs every array whole. :class:`StreamedNpz` streams each array to its own temporary
``.npy`` file beside the archive (its header, with the full first dimension, written with its
first block) and assembles the archive at :meth:`StreamedNpz.close`: stored, as ``np.savez``
writes it, or deflated, as ``np.savez_compressed`` does; ``np.load`` reads either.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np


class StreamedNpz:
    """Arrays of ``rows`` rows each, appended a block of rows at a time, and small whole arrays (:meth:`put`)."""

    def __init__(self, path: Path, rows: int, compress: bool = False):
        self.path, self.rows = path, rows
        self.compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self._dir = tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent)
        self._open: dict[str, BinaryIO] = {}
        self._names: list[str] = []  # archive order: first written first

    def _member(self, name: str) -> Path:
        return Path(self._dir.name) / f"{name}.npy"

    def append(self, name: str, block: np.ndarray) -> None:
        """Append ``block``'s rows to array ``name`` (its first block fixes dtype and trailing shape)."""
        block = np.ascontiguousarray(block)
        fh = self._open.get(name)
        if fh is None:
            fh = self._open[name] = open(self._member(name), "wb")
            self._names.append(name)
            header = {"descr": np.lib.format.dtype_to_descr(block.dtype), "fortran_order": False,
                      "shape": (self.rows, *block.shape[1:])}
            np.lib.format.write_array_header_2_0(fh, header)
        fh.write(block.data)

    def put(self, name: str, array: np.ndarray) -> None:
        """Write a whole array (metadata, scalars)."""
        with open(self._member(name), "wb") as fh:
            np.lib.format.write_array(fh, np.asarray(array), allow_pickle=False)
        self._names.append(name)

    def close(self, comment: bytes = b"") -> None:
        """Assemble the archive at ``path`` (with ``comment`` as the zip comment) and drop the parts."""
        for fh in self._open.values():
            fh.close()
        with zipfile.ZipFile(self.path, "w", self.compression, allowZip64=True) as zf:
            for name in self._names:
                zf.write(self._member(name), f"{name}.npy")
            zf.comment = comment
        self._dir.cleanup()

    def abort(self) -> None:
        """Drop everything written (the caller removes ``path``)."""
        for fh in self._open.values():
            fh.close()
        self._dir.cleanup()
