"""Between formats: checkpoints, the float PyTorch models, NIR, the fixed-point artifact, Lava, netx.

``to_nir`` / ``from_nir`` need the ``torch`` extra; they are imported on first use so that this
package stays importable without torch (the Lava environment).
"""


def to_nir(model, source_sha256=None, profile="exact"):
    """Export a float model to a ``nir.NIRGraph`` (see :func:`.nir_export.to_nir`)."""
    from silif_deploy.converters.nir_export import to_nir as _to_nir

    return _to_nir(model, source_sha256=source_sha256, profile=profile)


def from_nir(graph):
    """Rebuild the float model from a NIR graph we wrote (see :func:`.nir_import.from_nir`)."""
    from silif_deploy.converters.nir_import import from_nir as _from_nir

    return _from_nir(graph)
