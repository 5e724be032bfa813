"""Random mutations of valid HDF5 and .npz files, for the reader fuzz tests (hypothesis strategies).

A mutation is a small, named edit of one entry (a dataset, an attribute, a group, an .npz member)
or of the file's bytes. ``noop`` rewrites an entry with its own value: a reader must accept it and
give exactly what the unmutated file gives. Any other mutation may be refused (one
:class:`SilifDeployError` line) or accepted; an accepted one is compared by the test.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import h5py
import numpy as np
from hypothesis import strategies as st

SPECIALS = (0, -1, 1, 3, 255, 1000, 2**31, 2**40, 2**62, -(2**40), 0.5, 1e30, float("nan"), float("inf"))
KINDS = ("noop", "special", "scale", "shape", "dtype", "text", "delete")


def h5_entries(path: Path) -> list[tuple[str, str | None]]:
    """(object path, attribute name or None) for every dataset, group and attribute of the file."""
    entries: list[tuple[str, str | None]] = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            entries.append((name, None))
            entries.extend((name, a) for a in obj.attrs)
        entries.extend(("/", a) for a in f.attrs)
        f.visititems(visit)
    return sorted(entries, key=lambda e: (e[0], e[1] or ""))


def _mutated(value: np.ndarray, kind: str, special, rng: np.random.Generator):
    """The mutated value of an array (None: delete the entry)."""
    if kind == "noop":
        return value
    if kind == "delete":
        return None
    if kind == "text":
        return np.array("mutated")
    if value.dtype.kind in "OSU":  # strings: only text edits and deletion make sense
        return np.array(str(special))
    if kind == "special":
        # widened so the special value fits (2^40 into an int32 array becomes an int64 array)
        wide = np.float64 if isinstance(special, float) or value.dtype.kind == "f" else np.int64
        out = value.astype(wide)
        flat = out.reshape(-1)
        if flat.size:
            with np.errstate(all="ignore"):
                flat[rng.integers(flat.size)] = special
        else:
            out = np.array(special)
        return out
    if kind == "scale":
        with np.errstate(all="ignore"):
            return (value * (3 if value.dtype.kind in "iu" else 1.001)).astype(value.dtype)
    if kind == "shape":
        return value.reshape(-1)[:-1] if value.size > 1 else np.zeros((2, 2), value.dtype)
    if kind == "dtype":
        return value.astype(np.float64) + 0.5 if value.dtype.kind in "biu" else np.rint(value).astype(np.int64)
    raise AssertionError(kind)


def mutate_h5(src: Path, dst: Path, entry: tuple[str, str | None], kind: str, special, seed: int) -> None:
    """Copy ``src`` to ``dst`` with one entry mutated."""
    dst.write_bytes(src.read_bytes())
    rng = np.random.default_rng(seed)
    name, attr = entry
    with h5py.File(dst, "r+") as f:
        obj = f[name]
        if attr is not None:
            new = _mutated(np.asarray(obj.attrs[attr]), kind, special, rng)
            if new is None:
                del obj.attrs[attr]
            elif kind == "noop":
                obj.attrs[attr] = obj.attrs[attr]
            else:
                obj.attrs[attr] = str(new[()]) if new.dtype.kind == "U" else new
        elif isinstance(obj, h5py.Group):
            if kind == "delete":
                del f[name]
        else:
            value = obj[()]
            new = _mutated(np.asarray(value), kind, special, rng)
            if kind == "noop":  # the copy is the unmutated file (rewriting a ragged vlen dataset would fail)
                return
            del f[name]
            if new is not None:
                if new.dtype.kind == "U":
                    f.create_dataset(name, data=new.astype(object), dtype=h5py.string_dtype())
                else:
                    f.create_dataset(name, data=new)


def mutate_bytes(src: Path, dst: Path, kind: str, seed: int) -> None:
    """``truncate`` the file at a random length, or ``flip`` a few random bytes."""
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(seed)
    if kind == "truncate":
        data = data[: int(rng.integers(0, len(data)))]
    else:
        for i in rng.integers(0, len(data), 8):
            data[i] ^= int(rng.integers(1, 256))
    dst.write_bytes(bytes(data))


def mutate_npz(src: Path, dst: Path, member: str, kind: str, special, seed: int) -> None:
    """Copy an .npz with one member mutated (deleted, reshaped, retyped, a value replaced)."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    new = _mutated(arrays[member], kind, special, np.random.default_rng(seed))
    if new is None:
        del arrays[member]
    else:
        arrays[member] = new
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    dst.write_bytes(buf.getvalue())


def npz_members(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return sorted(n[: -len(".npy")] for n in z.namelist())


@st.composite
def h5_mutations(draw, entries: list[tuple[str, str | None]]):
    """(entry, kind, special, seed) for :func:`mutate_h5`, or ("bytes", kind, None, seed)."""
    seed = draw(st.integers(0, 2**32 - 1))
    if draw(st.integers(0, 9)) == 0:
        return ("bytes", draw(st.sampled_from(["truncate", "flip"])), None, seed)
    return (draw(st.sampled_from(entries)), draw(st.sampled_from(KINDS)), draw(st.sampled_from(SPECIALS)), seed)


def apply_h5(src: Path, dst: Path, mutation) -> None:
    entry, kind, special, seed = mutation
    if entry == "bytes":
        mutate_bytes(src, dst, kind, seed)
    else:
        mutate_h5(src, dst, entry, kind, special, seed)
