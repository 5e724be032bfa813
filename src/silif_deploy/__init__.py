"""silif-deploy: deploy SiLIF and C-SiLIF spiking networks onto Loihi-class hardware.

The import namespace joins the repository's three code folders:
``silif_deploy.deploy`` (pipeline, CLI), ``silif_deploy.converters`` (checkpoint, torch, NIR,
fixed-point artifact, Lava, netx) and ``silif_deploy.hw_models`` (integer neuron models,
simulator, hardware and energy profiles). Importing this package does not import torch.
"""

from silif_deploy.errors import SilifDeployError

__version__ = "0.1.0"
PRODUCER = "silif-deploy"

__all__ = ["SilifDeployError", "__version__", "load_model", "PRODUCER"]


def load_model(path, model_type=None, init_state="zeros", neuron=None, prenorm=None):
    """Load a trained checkpoint (the authors' plain ``state_dict`` or ours) as an eval-mode model:
    SiLIF-family, or SpikingSSM / binary S4D (detected from the keys; ``neuron`` ``lif``/``sdn``,
    ``prenorm`` for the authors' flat files, which do not record it).

    See :func:`silif_deploy.converters.checkpoint.load_model`. Needs the ``torch`` extra.
    """
    from silif_deploy.converters.checkpoint import load_model as _load

    return _load(path, model_type=model_type, init_state=init_state, neuron=neuron, prenorm=prenorm)
