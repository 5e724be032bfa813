"""lava-dl 0.6.0's own netx reader (``lava.lib.dl.netx.hdf5.Network``), imported without torch.

lava-dl pins torch 2.3, which has no CPU wheel for Python 3.10 here, and ``import
lava.lib.dl.netx`` pulls torch in through two imports that reading an HDF5 file never uses:

1. ``netx/__init__.py`` imports ``netx/sequential_modules.py`` (a torch-based pipeline for streaming
   data to a netx network on hardware). We register the ``lava.lib.dl.netx`` package without
   running its ``__init__``; its submodules ``hdf5``, ``utils``, ``blocks.process`` and
   ``blocks.models`` are then imported from lava-dl's installed files, unmodified.
2. ``netx/hdf5.py`` imports ``slayer.neuron.rf.neuron_params``, which only RF neuron types call
   (``Network.get_neuron_params``: "RF" in the neuron type). We register a stand-in
   ``lava.lib.dl.slayer.neuron.rf`` whose ``neuron_params`` raises; nothing of slayer (the
   training library, where torch lives) is imported.

Everything that reads our file and builds the Lava processes (``NetDict``, ``optimize_weight_bits``,
``Network._create``, ``get_neuron_params`` for CUBA, the Dense/Input blocks) is lava-dl's own code,
and Lava runs Intel's own ``PyDenseModelBitAcc`` and ``PyLifModelBitAcc``/``PyLifResetModelBitAcc``.
So a match proves that netx reads the file as our simulator runs it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path


def _stub_rf_params(*args, **kwargs):
    raise NotImplementedError("RF neuron types need lava-dl's slayer (torch); not available in this environment")


def import_netx() -> types.SimpleNamespace:
    """``hdf5``, ``process`` and ``models`` (the block ProcessModels) of the installed lava-dl netx,
    and ``model_map(net)``: netx's own models for a Network and its blocks, keyed by instance (Lava
    checks ``exception_proc_model_map`` by instance before discovery; discovery would import every
    module of the netx package, sequential_modules and its torch included)."""
    spec = importlib.util.find_spec("lava.lib.dl")
    if spec is None:
        raise ImportError("lava-dl is not installed")
    netx_dir = Path(list(spec.submodule_search_locations)[0]) / "netx"
    if "lava.lib.dl.netx" not in sys.modules:
        package = types.ModuleType("lava.lib.dl.netx")
        package.__path__ = [str(netx_dir)]
        sys.modules["lava.lib.dl.netx"] = package
    saved = {name: sys.modules.get(name) for name in ("lava.lib.dl.slayer", "lava.lib.dl.slayer.neuron",
                                                       "lava.lib.dl.slayer.neuron.rf")}
    try:
        for name in saved:
            stub = types.ModuleType(name)
            stub.__path__ = []
            sys.modules[name] = stub
        sys.modules["lava.lib.dl.slayer.neuron.rf"].neuron_params = _stub_rf_params
        hdf5 = importlib.import_module("lava.lib.dl.netx.hdf5")
        models = importlib.import_module("lava.lib.dl.netx.blocks.models")
        process = importlib.import_module("lava.lib.dl.netx.blocks.process")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    block_models = {process.Dense: models.PyDenseModel, process.Input: models.PyInputModel}

    def model_map(net) -> dict:
        return {net: hdf5.PyNetworkModel, **{block: block_models[type(block)] for block in net.layers}}

    return types.SimpleNamespace(hdf5=hdf5, models=models, process=process, model_map=model_map)
