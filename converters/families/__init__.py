"""The float neuron families, registered once: one module per family, one line per family here.

A family module (:mod:`.adaptive`, :mod:`.resonate`; the readout is :mod:`.readout`) owns its
torch layer, step, extraction, NIR body and quantization, declared as a
:class:`~.family.FloatFamily`; the shared machinery (checkpoints, the network, BatchNorm fold, NIR
assembly, weight and bias quantization) looks a kind up here and nowhere else. A family defined
outside the package (a test's) registers with :func:`register`.
"""

from __future__ import annotations

from silif_deploy.converters.families import adaptive, resonate
from silif_deploy.converters.families.family import FloatFamily
from silif_deploy.errors import SilifDeployError

FAMILIES: dict[str, FloatFamily] = {}


def register(family: FloatFamily) -> FloatFamily:
    """Make ``family`` known by its name (registering the same family again is a no-op)."""
    known = FAMILIES.get(family.name)
    if known is not None and known is not family:
        raise SilifDeployError(f"a different neuron family is already registered as '{family.name}'")
    FAMILIES[family.name] = family
    return family


register(adaptive.SILIF)
register(resonate.CSILIF)
register(adaptive.CADLIF)
register(adaptive.ADLIF)
register(adaptive.LIF)
register(resonate.RF)


def family(kind: str) -> FloatFamily:
    """The registered family ``kind``, or one line naming the known ones."""
    try:
        return FAMILIES[kind]
    except KeyError:
        raise SilifDeployError(f"unknown model type '{kind}'; choose one of: {', '.join(FAMILIES)}") from None

