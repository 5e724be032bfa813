"""The fixed-point network as Lava processes (lava-nc 0.10, Python 3.10 only): ``processes``
(our neuron Process and its ``fixed_pt`` model), ``network`` (building: :func:`to_lava`) and
``runner`` (running: :func:`run_lava`). See ``docs/lava.md``.

This file imports nothing from Lava, so that :func:`require_lava` can say what to do without it.
"""

import importlib.util
import multiprocessing
import sys

from silif_deploy.errors import SilifDeployError

LAVA_MISSING = (
    "the Lava engine needs lava-nc 0.10 (Python 3.10): build it with `make lava-env` and run "
    "`.venv-lava/bin/silif-deploy simulate ... --engine lava`"
)

LAVA_LIF_ARITHMETIC = {"half": 1 << 23, "input_shift": 6, "threshold_exponent": 6}
"""What Lava's ``PyLifModelBitAcc`` hard-codes: 24-bit u and v, input and threshold shifted by 6."""


def require_lava() -> None:
    """Raise a SilifDeployError that says which environment to use when Lava is not installed."""
    if importlib.util.find_spec("lava") is None:
        raise SilifDeployError(LAVA_MISSING)


def allow_lava_import() -> None:
    """Call before the first Lava import. Lava's messaging module calls
    ``multiprocessing.set_start_method('fork')`` when imported, which raises once the start method
    is fixed, and numba fixes it (to Linux's default, fork) when it starts its parallel threads,
    e.g. in a ``simulate`` run before Lava is imported. Unfix it then: Lava sets the same again."""
    if "lava.magma.runtime.message_infrastructure.multiprocessing" not in sys.modules and \
            multiprocessing.get_start_method(allow_none=True) == "fork":
        multiprocessing.set_start_method(None, force=True)
