"""The values of network inputs and labels: checked once, where a file's arrays enter.

A reader (whole-file or chunked) calls :func:`check_input_header` on the shape and dtype a file
declares, :func:`check_input_chunk` on every piece of input it hands out, :func:`check_input_size`
on the whole shape, :func:`check_spike_times` on SHD/SSC event times and :func:`check_labels` on
labels. Each refusal is one :class:`SilifDeployError` line that
says what is wrong and what to do.
"""

from __future__ import annotations

import numpy as np

from silif_deploy.errors import SilifDeployError

FLOAT32_MAX = float(np.finfo(np.float32).max)
"""Inputs run in float32 in the float engine: larger magnitudes would become inf there."""


def check_input_chunk(x: np.ndarray, source: str, n_channels: int | None = None) -> np.ndarray:
    """Check (batch, time, channels) input values; return them in a dtype every engine takes.

    Refused: other shapes, non-numeric dtypes (strings, objects, complex), NaN or infinite
    values, and magnitudes beyond float32's range. float16 is widened to float32 (exactly).
    """
    check_input_header(x.shape, x.dtype, source, n_channels)
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise SilifDeployError(f"input '{source}' contains NaN or infinite values; clean the data first")
        peak = float(np.abs(x).max(initial=0.0))
        if peak > FLOAT32_MAX:
            raise SilifDeployError(f"input '{source}' holds values up to {peak:.3g}, beyond float32's range "
                                   f"({FLOAT32_MAX:.3g}); rescale the data")
    elif np.issubdtype(x.dtype, np.integer) and x.size and np.iinfo(x.dtype).bits > 32:
        peak = int(np.abs(x).max())
        if peak > 2**24:  # float32 (the float engine) holds integers exactly up to 2^24
            raise SilifDeployError(f"input '{source}' holds values up to {peak}, beyond 2^24 (float32's exact "
                                   "integers); rescale the data")
    return x


def check_input_header(shape: tuple[int, ...], dtype: np.dtype, source: str, n_channels: int | None = None) -> None:
    """Refuse shapes other than (batch, time, channels), non-numeric dtypes (strings, objects,
    complex) and a channel count other than the model's: what a file's header already tells."""
    if len(shape) != 3:
        raise SilifDeployError(f"input '{source}' has shape {shape}; expected 3 dimensions (batch, time, channels)")
    if not (dtype == bool or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise SilifDeployError(f"input '{source}' has dtype {dtype}; expected integer or float values")
    if n_channels is not None and shape[2] != n_channels:
        raise SilifDeployError(
            f"input '{source}' has {shape[2]} channels but the model expects {n_channels}; check the input file or binning"
        )


def check_input_size(shape: tuple[int, ...], source: str) -> None:
    """Refuse an input without samples or without time steps (there is nothing to run)."""
    if shape[0] == 0:
        raise SilifDeployError(f"input '{source}' has no samples; give at least one")
    if len(shape) > 1 and shape[1] == 0:
        raise SilifDeployError(f"input '{source}' has 0 time steps; give at least one")


def check_spike_times(times: np.ndarray, source: str) -> None:
    """SHD/SSC event times must be finite and ≥ 0 (a NaN time would silently drop its event)."""
    bad = ~np.isfinite(times) | (times < 0)
    if bad.any():
        raise SilifDeployError(f"'{source}' has {int(bad.sum())} spike times that are NaN, infinite or negative; "
                               "the file is damaged, get it again")


def check_labels(labels: np.ndarray, source: str, n_classes: int | None = None) -> np.ndarray:
    """Labels as int64: integer values (integral floats allowed), and in [0, ``n_classes``) when given."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise SilifDeployError(f"labels of '{source}' have shape {labels.shape}; expected one label per sample")
    if labels.dtype == bool or not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)):
        raise SilifDeployError(f"labels of '{source}' have dtype {labels.dtype}; expected integer class indices")
    if np.issubdtype(labels.dtype, np.floating):
        if not np.isfinite(labels).all() or not np.array_equal(labels, np.floor(labels)):
            raise SilifDeployError(f"labels of '{source}' are not all whole numbers; expected integer class indices")
        if labels.size and np.abs(labels).max() > 2**53:
            raise SilifDeployError(f"labels of '{source}' are too large to be class indices")
    labels = labels.astype(np.int64)
    if n_classes is not None and labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = int(labels.min()) if labels.min() < 0 else int(labels.max())
        raise SilifDeployError(f"labels of '{source}' include {bad}, but the model has {n_classes} classes "
                               f"(labels 0…{n_classes - 1}); check the data matches the model")
    return labels

