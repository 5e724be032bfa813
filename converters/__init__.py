"""Between formats: checkpoints, the float PyTorch models, NIR, the fixed-point artifact, Lava, netx.

``to_nir`` / ``from_nir`` need the ``torch`` extra and ``to_lava`` the Lava environment; they are
imported on first use so that this package stays importable without either.
"""


def to_nir(model, source_sha256=None, profile="exact"):
    """Export a float model to a ``nir.NIRGraph`` (see :func:`.nir_export.to_nir`)."""
    from silif_deploy.converters.nir_export import to_nir as _to_nir

    return _to_nir(model, source_sha256=source_sha256, profile=profile)


def from_nir(graph):
    """Rebuild the float model from a NIR graph we wrote (see :func:`.nir_import.from_nir`)."""
    from silif_deploy.converters.nir_import import from_nir as _from_nir

    return _from_nir(graph)


def to_lava(artifact, x_int=None, n_steps=None):
    """Build a fixed-point artifact (path or ``FixedPointNetwork``) as Lava processes; unpacks as
    ``(input process, readout groups, list of processes)`` (see :func:`.lava_backend.network.to_lava`)."""
    from silif_deploy.converters.lava_backend import require_lava

    require_lava()
    from silif_deploy.converters.artifact import read_artifact
    from silif_deploy.converters.lava_backend.network import to_lava as _to_lava
    from silif_deploy.hw_models.network import FixedPointNetwork

    network = artifact if isinstance(artifact, FixedPointNetwork) else read_artifact(artifact)
    return _to_lava(network, x_int=x_int, n_steps=n_steps)
