"""Write a fixed-point network in lava-dl's netx HDF5 layout (h5py only; no torch, no lava-dl).

Layout (``loihi_lava.md`` §7; ``docs/lava.md`` has the full description)::

    /layer/0                 type 'input', shape [n_inputs]
    /layer/<1..L>            type 'dense', shape [n], weight (n, fan_in), neuron/…  hidden layers
    /layer/<L+1>             type 'dense', shape, weight, bias, neuron/…            readout (CUBA)
    attrs["silif_deploy"]    JSON: format, version, provenance, the hardware profile's TOML, the
                             input scaling, and per layer the exact synapse (weight_exp,
                             num_weight_bits, graded) and the state scale

What netx does with a dense layer (lava-dl 0.6 ``netx/hdf5.py``, ``netx/utils.py``): it casts
``weight`` and ``bias`` to int, clips weights to [−256, 254], derives its own weight exponent
(``optimize_weight_bits``: lossless for integers in that range) and builds Lava's LIF with
vth = vThMant, du = iDecay − 1, dv = vDecay, bias_mant = bias, bias_exp = 6. So ``weight`` is
always our integer weight W (Lava's 8-bit grid is netx's range); a layer runs in netx as in our
simulator only when it is CUBA with weight exponent 0 and a bias that is a multiple of 2^6, the
grid ``quantize(..., netx=True)`` puts the readout on (:func:`netx_problems` says why a layer
cannot load). CUBA layers (the readout, or hidden Lava LIF layers) are netx's own ``CUBA``:
iDecay = du + 1, vDecay = dv, vThMant = vth, ``bias`` = (bias_mant << bias_exp) >> 6, refDelay 1,
gradedSpike False. Our hidden kinds use the extension ``neuron/type = SILIF_FXP``:
``neuron/kind`` names the kind and every field of its integer parameter record is a
``neuron/<field>`` dataset (per-neuron arrays, scalars for the shared ones); netx cannot load them.
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np

from silif_deploy.converters.files import atomic_output, require_file
from silif_deploy.converters.lava_backend import LAVA_LIF_ARITHMETIC
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.network import FixedLayer, FixedPointNetwork
from silif_deploy.hw_models.neuron_cuba import CubaParams
from silif_deploy.hw_models.neuron_kinds import KINDS, READOUT_KIND
from silif_deploy.hw_models.profile import profile_from_text

NETX_BIAS_EXP = 6
"""netx's CUBA layers take the file's integer ``bias`` as bias_mant with bias_exp 6 (lava-dl 0.6
``netx/hdf5.py: get_neuron_params``): the effective bias is a multiple of 2^6."""

NETX_EXTENSION_TYPE = "SILIF_FXP"
NETX_FORMAT = "silif-deploy-netx"
NETX_VERSION = 2  # version 1 wrote ``weight`` as W·2^weight_exp (netx truncated and clipped it)
NETX_WEIGHT_RANGE = (-256, 254)  # netx's optimize_weight_bits clips mixed-sign weights to this


def _type(g: h5py.Group, name: str) -> None:
    g.create_dataset("type", (1,), "S10", [name.encode("ascii")])


def _effective_bias(p: CubaParams) -> np.ndarray:
    return np.where(p.bias_exp >= 0, p.bias_mant << np.maximum(p.bias_exp, 0), p.bias_mant >> np.maximum(-p.bias_exp, 0))


def netx_problems(layer: FixedLayer) -> list[str]:
    """Why lava-dl's netx cannot run ``layer`` as our simulator does (empty: it can, bit for bit)."""
    if layer.kind != READOUT_KIND:
        return [f"our {layer.kind} neuron (extension neuron/type {NETX_EXTENSION_TYPE}; netx has no such neuron)"]
    problems = []
    syn, p = layer.synapse, layer.params
    if syn.weight_exp != 0:
        problems.append(f"weight exponent {syn.weight_exp} (netx applies none: it reads integer weights; "
                        "export with --target netx)")
    lo, hi = NETX_WEIGHT_RANGE
    if syn.num_weight_bits > 8 or syn.weights.min(initial=0) < lo or syn.weights.max(initial=0) > hi:
        problems.append(f"weights outside netx's 8-bit range [{lo}, {hi}]")
    if np.any(_effective_bias(p) % (1 << NETX_BIAS_EXP)):
        problems.append(f"bias not a multiple of 2^{NETX_BIAS_EXP} (netx's bias exponent; export with --target netx)")
    got = {"half": p.half, "input_shift": p.input_shift, "threshold_exponent": p.threshold_exponent}
    if got != LAVA_LIF_ARITHMETIC:
        problems.append(f"arithmetic {got} is not netx CUBA's (Lava LIF: {LAVA_LIF_ARITHMETIC}); export with --profile loihi2")
    return problems


def _cuba_neuron(g: h5py.Group, layer: FixedLayer) -> None:
    p = layer.params
    g.create_dataset("bias", data=_effective_bias(p) >> NETX_BIAS_EXP)
    n = g.create_group("neuron")
    n.create_dataset("type", data="CUBA")
    n.create_dataset("iDecay", data=_scalar_if_uniform(p.du + 1))
    n.create_dataset("vDecay", data=_scalar_if_uniform(p.dv))
    n.create_dataset("vThMant", data=int(p.vth))
    n.create_dataset("refDelay", data=1)
    n.create_dataset("gradedSpike", data=False)


def _scalar_if_uniform(values: np.ndarray):
    """slayer writes shared decays as scalars; per-neuron ones stay arrays."""
    return int(values[0]) if np.all(values == values[0]) else values


def _extension_neuron(g: h5py.Group, layer: FixedLayer) -> None:
    n = g.create_group("neuron")
    n.create_dataset("type", data=NETX_EXTENSION_TYPE)
    n.create_dataset("kind", data=layer.kind)
    for field, value in layer.params._asdict().items():
        n.create_dataset(field, data=value)


def write_netx(network: FixedPointNetwork, path: str | os.PathLike) -> None:
    """Write ``network`` atomically in the netx layout (module docstring). Every CUBA layer must
    be one netx runs exactly (:func:`netx_problems`); our other kinds go in as the extension."""
    for i, layer in enumerate(network.layers):
        problems = netx_problems(layer) if layer.kind == READOUT_KIND else []
        if problems:
            raise SilifDeployError(f"layer {i} (CUBA) cannot be written for netx CUBA: {'; '.join(problems)}")
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["silif_deploy"] = json.dumps({
            "format": NETX_FORMAT, "format_version": NETX_VERSION, "model_type": network.model_type,
            "input_frac_bits": network.input_frac_bits, "input_message_bits": network.profile.input_message_bits,
            "hardware_profile": network.profile.source_text, "provenance": network.provenance,
            "layers": [{"weight_exp": int(l.synapse.weight_exp), "num_weight_bits": int(l.synapse.num_weight_bits),
                        "graded": bool(l.synapse.graded), "scale": int(l.scale)} for l in network.layers],
        }, sort_keys=True)
        inp = f.create_group("layer/0")
        _type(inp, "input")
        inp.create_dataset("shape", data=np.array([network.n_inputs]))
        for i, layer in enumerate(network.layers, start=1):
            g = f.create_group(f"layer/{i}")
            _type(g, "dense")
            g.create_dataset("shape", data=np.array([layer.size]))
            g.create_dataset("weight", data=layer.synapse.weights.astype(np.int32))
            if layer.kind == READOUT_KIND:
                _cuba_neuron(g, layer)
            else:
                _extension_neuron(g, layer)


def netx_file_version(path: str | os.PathLike) -> int | None:
    """The format version of a netx file :func:`write_netx` wrote; None for anything else (e.g. our
    .loihi2.h5 artifact)."""
    try:
        with h5py.File(path, "r") as f:
            meta = json.loads(f.attrs.get("silif_deploy", "{}")) if "layer" in f else {}
    except (OSError, ValueError):
        return None
    return int(meta.get("format_version", 1)) if meta.get("format") == NETX_FORMAT else None


def read_netx(path: str | os.PathLike) -> FixedPointNetwork:
    """Read a file :func:`write_netx` wrote back into the network it came from (the readout's
    bias as one effective bias, bias_exp 0: the same integer arithmetic). Version 1 files (weights
    written as W·2^weight_exp) read as before."""
    require_file(path, "netx file")
    with h5py.File(path, "r") as f:
        if "silif_deploy" not in f.attrs:
            raise SilifDeployError(f"'{path}' was not written by silif-deploy (no silif_deploy attribute); "
                                   "only our own netx files can be read back")
        meta = json.loads(f.attrs["silif_deploy"])
        version = int(meta.get("format_version", 1))
        layers = [_read_layer(f[f"layer/{i}"], syn, version) for i, syn in enumerate(meta["layers"], start=1)]
        n_inputs = int(f["layer/0/shape"][0])
    return FixedPointNetwork.chain(
        model_type=meta["model_type"], n_inputs=n_inputs, hidden=layers[:-1], readout=layers[-1],
        input_frac_bits=meta["input_frac_bits"], profile=profile_from_text(meta["hardware_profile"], origin=str(path)),
        provenance=meta["provenance"],
    )


def _read_layer(g: h5py.Group, syn: dict, version: int) -> FixedLayer:
    exp = syn["weight_exp"]
    weights = g["weight"][()]
    if version == 1:  # W·2^weight_exp: exact back to W (a power-of-two scaling)
        weights = np.rint(weights * 2.0**-exp)
    weights = weights.astype(np.int64)
    synapse = DenseSynapse(weights, exp, syn["num_weight_bits"], syn["graded"])
    n = g["neuron"]
    if n["type"][()].decode() == "CUBA":
        size = weights.shape[0]
        per_neuron = lambda v: np.broadcast_to(np.asarray(v, np.int64), (size,)).copy()  # noqa: E731
        bias = np.rint(g["bias"][()] * 2.0**NETX_BIAS_EXP).astype(np.int64)
        params = CubaParams(du=per_neuron(n["iDecay"][()]) - 1, dv=per_neuron(n["vDecay"][()]), bias_mant=bias,
                            bias_exp=np.zeros(size, np.int64), vth=int(n["vThMant"][()]), **LAVA_LIF_ARITHMETIC)
        return FixedLayer(READOUT_KIND, synapse, params, syn["scale"])
    kind = n["kind"][()].decode()
    fields = KINDS[kind].params_type._fields
    params = KINDS[kind].params_type(**{k: _value(n[k][()]) for k in fields})
    return FixedLayer(kind, synapse, params, syn["scale"])


def _value(v):
    return int(v) if np.ndim(v) == 0 else np.asarray(v, np.int64)
