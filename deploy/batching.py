"""The one way a command walks a data set: batches of :data:`BATCH_SIZE` samples, with a progress bar.

Every data loop of ``deploy/`` (calibration, report and compare evaluation, ``simulate``, golden
files, ``verify --data``, the Dask shards) goes through :func:`batches`. The bar goes to stderr and
shows on a terminal only (logs stay clean); ``SILIF_DEPLOY_PROGRESS=1`` shows it anywhere (tests
use that), ``=0`` never.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from silif_deploy.converters.datasets import InputSource

BATCH_SIZE = 128
"""Samples run at a time unless a command is told otherwise: small enough that a batch's spike
rasters and float reference stay within ~0.3 GB (SSC 2×512: 39 MB of rasters, ~0.2 GB of float
activations), large enough that a call's set-up (the layer plan, the threads) is paid rarely: on
the SSC 2×512 networks the simulator ran 897 SiLIF and 697 C-SiLIF samples/s in calls of 32, 1,026
and 890 in calls of 128 (2 threads, one run), and the float model was no slower. Results do not
depend on it except for the last bits of the float sums (readout errors), which add batch by batch."""


def progress(total: int, desc: str | None) -> tqdm:
    """A bar over ``total`` samples (none when ``desc`` is None); call ``update(n)`` after each batch of n."""
    setting = os.environ.get("SILIF_DEPLOY_PROGRESS", "")
    disable = True if desc is None else {"1": False, "0": True}.get(setting)  # None: on a terminal only
    return tqdm(total=total, desc=desc, unit="sample", unit_scale=True, file=sys.stderr, disable=disable,
                dynamic_ncols=True, smoothing=0.1)


def batches(source: InputSource | np.ndarray, desc: str | None, size: int = BATCH_SIZE,
            labels: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(inputs, labels or None) of one pass over ``source``, ``size`` samples at a time, each chunk
    checked as it enters (:meth:`InputSource.chunks`); an array is wrapped with its ``labels``.
    ``desc``: the progress bar's label (None: no bar, e.g. inside a Dask task)."""
    if isinstance(source, np.ndarray):
        source = InputSource.from_array(source, labels)
    with progress(len(source), desc) as bar:
        for x, lb in source.batches(size):
            yield x, lb
            bar.update(len(x))
