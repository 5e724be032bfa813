"""What every PNG report shares: matplotlib's file-only backend and one atomic way to write a figure."""

from __future__ import annotations

import os
from typing import Any

from silif_deploy.converters.files import atomic_output


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend: the reports are files, written in CI and over ssh
    where no display exists (imported here, when a plot is drawn: it costs a second of start-up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | os.PathLike) -> None:
    """Write ``fig`` to ``path`` as a 90-dpi PNG, atomically (no half-written plot), and free it."""
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    pyplot().close(fig)
