"""``silif-deploy inspect``: what a fixed-point artifact holds, without running it."""

from __future__ import annotations

import argparse

import numpy as np

HELP = ("print a fixed-point artifact's (or netx file's) layers, bit widths, exponents, scales, provenance, "
        "warnings, and which layers lava-dl's netx can load; for a SpikingSSM / binary-S4D checkpoint or NIR "
        "file, its float model")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifact", help="fixed-point artifact (.loihi2.h5) written by: silif-deploy export MODEL --target loihi2, "
                                    "or a .netx.h5 written by --target netx; or a SpikingSSM checkpoint (.pt) or NIR file")
    from silif_deploy.deploy.engines import add_float_model_arguments

    add_float_model_arguments(p)


def run(args: argparse.Namespace) -> int:
    from silif_deploy.deploy.engines import source_kind

    if source_kind(args.artifact) != "artifact" and _inspect_spiking_ssm(args):
        return 0
    from silif_deploy.converters.artifact import ARTIFACT_VERSION, artifact_identity, read_artifact, recorded_identity
    from silif_deploy.converters.files import sha256_file
    from silif_deploy.converters.netx_export import NETX_FORMAT, netx_file_version, netx_problems, read_netx
    from silif_deploy.hw_models.metrics import layer_names

    netx = netx_file_version(args.artifact)
    network = read_netx(args.artifact) if netx else read_artifact(args.artifact)
    prof = network.profile
    sizes = " → ".join(str(n) for n in [network.n_inputs, *(layer.size for layer in network.layers)]) if network.is_chain \
        else f"{network.n_inputs} inputs, {len(network.stages)} stages (a graph), {network.n_classes} classes"
    fmt = f"netx file, format {NETX_FORMAT} v{netx}" if netx else f"format version {ARTIFACT_VERSION}"
    print(f"artifact: {args.artifact} ({fmt}, sha256 {sha256_file(args.artifact)})")
    if not netx:
        identity, recorded = artifact_identity(network), recorded_identity(args.artifact)
        state = ("as recorded at export" if identity == recorded else "no identity recorded at export" if recorded is None
                 else f"DIFFERS from the {recorded[:16]}… recorded at export: the file was edited since")
        print(f"identity: {identity} (content hash of network, parameters and profile, what verify --golden "
              f"compares; {state})")
    print(f"model: {network.model_type}, {sizes}; input payload fraction bits {network.input_frac_bits}"
          f"{' (event counts sent as they are)' if network.input_frac_bits == 0 else ''}; "
          f"{network.delay} steps of Dense delay")
    print(f"profile: {prof.name}: {prof.description}")
    print(f"  weights {prof.weight_bits} bit (exponent {prof.weight_exp_min}…{prof.weight_exp_max}), states "
          f"{prof.state_bits} bit, coefficients {prof.coefficient_bits} bit, overflow: current "
          f"{prof.current_overflow}, membrane {prof.membrane_overflow}, adaptation {prof.adaptation_overflow}")
    print("provenance:")
    for key, value in sorted(network.provenance.items()):
        if key != "hardware_profile_text":
            print(f"  {key}: {value}")
    if not network.is_chain:
        _print_stages(network)
        _print_quantization(network, stages=True)
        return 0
    print("layers:")
    header = ("layer", "kind", "neurons", "fan-in", "w bits", "w exp", "w range", "nonzero w", "scale", "threshold")
    rows = []
    for name, layer in zip(layer_names(len(network.hidden)), network.layers):
        w = layer.synapse.weights
        threshold = getattr(layer.params, "threshold", None)
        rows.append((name, layer.kind, str(layer.size), str(layer.synapse.fan_in), str(layer.synapse.num_weight_bits),
                     str(layer.synapse.weight_exp), f"{int(w.min())}…{int(w.max())}",
                     f"{np.count_nonzero(w):,}/{w.size:,}", str(layer.scale), "–" if threshold is None else str(threshold)))
    _print_table(header, rows)
    print("lava-dl netx (lava.lib.dl.netx.hdf5.Network, layer i of the .netx.h5 file):")
    for i, (name, layer) in enumerate(zip(layer_names(len(network.hidden)), network.layers), start=1):
        problems = netx_problems(layer)
        print(f"  layer {i} ({name}): " + ("loads, runs bit for bit as our simulator" if not problems
                                          else "cannot load: " + "; ".join(problems)))
    _print_quantization(network)
    return 0


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for r in (header, *rows):
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))


def _print_quantization(network, stages: bool = False) -> None:
    from silif_deploy.hw_models.metrics import quantization_section

    quant = quantization_section(network.quantization, stages)
    print(f"quantization: {'calibrated state ranges' if quant['calibrated'] else 'weights only (default state range)'}")
    print(f"warnings ({len(quant['warnings'])}):" if quant["warnings"] else "warnings: none")
    for line in quant["warnings"]:
        print(f"  {line}")
    if network.float_model is None:
        print("  no float model inside: --engine float and fidelity reports need the source checkpoint")


def _print_stages(network) -> None:
    """Every stage of a graph network (SpikingSSM, binary S4D): what it reads, its size, its integers."""
    from silif_deploy.hw_models.network import Add, Dense, Glu, MeanLinear, Neurons, inputs_of
    from silif_deploy.hw_models.stage_metrics import describe_graph

    sizes = {d.name: d for d in describe_graph(network).stages}
    print("stages (run order; a Dense delivers one step later):")
    header = ("stage", "type", "kind", "reads", "values", "buffers", "w bits", "w exp", "w range", "nonzero w", "details")
    rows = []
    for stage in network.stages:
        d = sizes[stage.name]
        bits = exp = rng = nonzero = "–"
        details = ""
        if isinstance(stage, Dense):
            syn = stage.synapse
            w = syn.weights
            bits, rng, nonzero = str(syn.num_weight_bits), f"{int(w.min())}…{int(w.max())}", f"{np.count_nonzero(w):,}/{w.size:,}"
            exp = str(syn.weight_exp) if syn.row_exp is None else \
                f"{syn.weight_exp} + row {int(np.min(syn.row_exp))}…{int(np.max(syn.row_exp))}"
            details = "graded payloads" if syn.graded else "binary (spikes)"
        elif isinstance(stage, Neurons):
            threshold = getattr(stage.params, "threshold", getattr(stage.params, "vth", None))
            details = f"scale {stage.scale}" + ("" if threshold is None else f", threshold {threshold}")
        elif isinstance(stage, Add):
            details = f"{stage.bits or 'exact'} bit {stage.overflow if stage.bits else ''}, lags {tuple(stage.lags)}".replace("  ", " ")
        elif isinstance(stage, Glu):
            details = f"gate fraction bits {stage.params.gate_frac}, ±{stage.params.half - 1}"
        elif isinstance(stage, MeanLinear):
            details = f"host: mean over time, then {stage.weights.shape[0]}×{stage.weights.shape[1]} linear"
        rows.append((stage.name, type(stage).__name__, d.kind, ", ".join(inputs_of(stage)), str(d.size), str(d.buffers),
                     bits, exp, rng, nonzero, details))
    _print_table(header, rows)
    print("lava-dl netx: a graph network is not a netx layer chain (export --target netx refuses it)")


def _inspect_spiking_ssm(args: argparse.Namespace) -> bool:
    """Print the float model of a SpikingSSM checkpoint or NIR file; False for any other model (whose
    inspection is its artifact's)."""
    from silif_deploy.converters.files import sha256_file
    from silif_deploy.deploy.engines import float_model_options, is_spiking_ssm, load_float_model

    model = load_float_model(args.artifact, **float_model_options(args))
    if not is_spiking_ssm(model):
        return False
    from silif_deploy.converters.families.spiking_ssm import describe

    print(f"float model: {args.artifact} (sha256 {sha256_file(args.artifact)})")
    for line in describe(model):
        print(line)
    return True
