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
    from silif_deploy.hw_models.metrics import layer_names, quantization_section

    netx = netx_file_version(args.artifact)
    network = read_netx(args.artifact) if netx else read_artifact(args.artifact)
    prof = network.profile
    sizes = " → ".join(str(n) for n in [network.n_inputs, *(layer.size for layer in network.layers)])
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
    print("layers:")
    header = ("layer", "kind", "neurons", "fan-in", "w bits", "w exp", "w range", "nonzero w", "scale", "threshold")
    rows = []
    for name, layer in zip(layer_names(len(network.hidden)), network.layers):
        w = layer.synapse.weights
        threshold = getattr(layer.params, "threshold", None)
        rows.append((name, layer.kind, str(layer.size), str(layer.synapse.fan_in), str(layer.synapse.num_weight_bits),
                     str(layer.synapse.weight_exp), f"{int(w.min())}…{int(w.max())}",
                     f"{np.count_nonzero(w):,}/{w.size:,}", str(layer.scale), "–" if threshold is None else str(threshold)))
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for r in (header, *rows):
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print("lava-dl netx (lava.lib.dl.netx.hdf5.Network, layer i of the .netx.h5 file):")
    for i, (name, layer) in enumerate(zip(layer_names(len(network.hidden)), network.layers), start=1):
        problems = netx_problems(layer)
        print(f"  layer {i} ({name}): " + ("loads, runs bit for bit as our simulator" if not problems
                                          else "cannot load: " + "; ".join(problems)))
    quant = quantization_section(network.quantization)
    print(f"quantization: {'calibrated state ranges' if quant['calibrated'] else 'weights only (default state range)'}")
    print(f"warnings ({len(quant['warnings'])}):" if quant["warnings"] else "warnings: none")
    for line in quant["warnings"]:
        print(f"  {line}")
    if network.float_model is None:
        print("  no float model inside: --engine float and fidelity reports need the source checkpoint")
    return 0


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
