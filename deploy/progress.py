"""The progress bar every command that runs a data set shows: samples done, samples per second.

It goes to stderr and shows on a terminal only (logs stay clean); ``SILIF_DEPLOY_PROGRESS=1``
shows it anywhere (tests use that), ``=0`` never.
"""

from __future__ import annotations

import os
import sys

from tqdm import tqdm


def progress(total: int, desc: str) -> tqdm:
    """A bar over ``total`` samples; call ``update(n)`` after each batch of n."""
    setting = os.environ.get("SILIF_DEPLOY_PROGRESS", "")
    disable = {"1": False, "0": True}.get(setting)  # None: on a terminal only
    return tqdm(total=total, desc=desc, unit="sample", unit_scale=True, file=sys.stderr, disable=disable,
                dynamic_ncols=True, smoothing=0.1)
