"""NeuroBench 2.3.0 on our float models: the modules to register, and a run of its workload metrics.

::

    from silif_deploy.deploy.neurobench_bridge import neurobench_metrics
    results = neurobench_metrics(model, x)   # model: our SpikingNetwork; x: (batch, time, channels)
    # {"SynapticOperations": {"Effective_MACs": ..., "Effective_ACs": ..., "Dense": ...},
    #  "ActivationSparsity": ...}

How NeuroBench sees the model (``metrics_energy.md`` §3): it hooks every ``nn.Linear`` (each
layer's ``W``: the synaptic operations) on its own, and the activation modules it is told about.
Our hidden layer returns a tuple ``(spikes, states)``, which NeuroBench's activation hook cannot
count: registering the layer class gives ActivationSparsity 0.0 **without an error** (NeuroBench
turns a metric's exception into 0.0). The spikes leave each hidden layer through its ``Dropout``
(the identity in eval mode), so ``nn.Dropout`` is the module to register. The readout has none: as
in our reports, the sparsity is over the hidden spikes.

With that, NeuroBench's numbers are our report's (``tests/test_neurobench.py``): ``Effective_ACs``
+ ``Effective_MACs`` = the effective SOP (binary spikes count as ACs, event-count inputs above 1 as
MACs), ``Dense`` = steps × synapses, ActivationSparsity = the hidden-layer sparsity.

Only ``neurobench.benchmarks``, ``.models`` and ``.metrics`` are imported: NeuroBench's datasets
import torchaudio, whose wheel does not load next to torch 2.13, and nothing here needs them.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def neurobench_model(model):
    """Our float ``SpikingNetwork`` as a NeuroBench ``TorchModel``, its spike-emitting modules registered."""
    import torch
    from neurobench.models import TorchModel

    wrapped = TorchModel(model.eval())
    wrapped.add_activation_module(torch.nn.Dropout)
    return wrapped


def neurobench_metrics(model, x: np.ndarray, batch_size: int = 64) -> dict[str, Any]:
    """NeuroBench's ``SynapticOperations`` and ``ActivationSparsity`` of ``model`` on ``x``."""
    import torch
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations

    data = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    targets = torch.zeros(len(data), dtype=torch.long)  # the metrics asked for need no labels
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data, targets), batch_size=batch_size)
    benchmark = Benchmark(neurobench_model(model), loader, [], [], [[], [SynapticOperations, ActivationSparsity]])
    try:
        return benchmark.run(quiet=True)
    finally:
        benchmark.workload_metric_manager.cleanup_hooks(benchmark.model)  # stale hooks double-count a later run
