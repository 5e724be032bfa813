"""``silif-deploy export``: write a model in a deployment format.

Targets are functions in :data:`TARGETS`, ``target(job, args) -> [written paths]``; a new target
adds an entry (and its own options in :func:`add_arguments`). Every target writes under
``job.outdir`` (default ``out/<name>``, name = the model file's stem), atomically: a failed export
leaves no file behind.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from silif_deploy.converters.files import provenance, sha256_file, staged_outputs
from silif_deploy.deploy.engines import (
    add_float_model_arguments, float_model_options, is_spiking_ssm, load_float_model, model_name,
)
from silif_deploy.errors import SilifDeployError

HELP = ("export a checkpoint (or NIR file) for deployment: --target nir writes OUTDIR/<name>.nir "
        "(OUTDIR/<name>.lif-compat.nir with --nir-profile lif-compat); --target loihi2 writes <name>.nir, "
        "the fixed-point <name>.loihi2.h5 and report.json/.md/.png; --target netx writes <name>.netx.h5 "
        "(lava-dl's netx layout, our neurons as a documented extension) and <name>.readout.netx.h5 (the readout "
        "alone, which netx loads)")
DEFAULT_OUT_ROOT = Path("out")


@dataclass
class ExportJob:
    """What every target receives: the eval-mode float model and where its outputs go."""

    model: object
    source: Path
    source_sha256: str
    outdir: Path
    name: str

    def output(self, suffix: str) -> Path:
        """``OUTDIR/<name><suffix>``, e.g. ``job.output(".nir")``."""
        return self.outdir / f"{self.name}{suffix}"


def _export_nir(job: ExportJob, args: argparse.Namespace) -> list[Path]:
    import nir

    from silif_deploy.converters.nir_export import write_nir

    # the lossy file never takes the exact file's name: a pipeline reading <name>.nir must get the exact one
    suffix = ".nir" if args.nir_profile == "exact" else f".{args.nir_profile}.nir"
    if args.check_nir:
        if args.nir_profile != "exact":
            raise SilifDeployError("--check-nir reads an exact file back; the lif-compat profile is lossy by design")
        with staged_outputs(job.outdir) as stage:  # the file appears only once it has read back equal
            _write_checked_nir(job.model, stage / job.output(suffix).name, job.source_sha256)
        path = job.output(suffix)
    else:
        path = write_nir(job.model, job.output(suffix), source_sha256=job.source_sha256, profile=args.nir_profile)
    cfg = job.model.config
    print(f"NIR {nir.version}, profile {args.nir_profile}{' (lossy)' if args.nir_profile != 'exact' else ''}: "
          f"{cfg.model_type} {cfg.n_inputs} -> {' -> '.join(map(str, cfg.hidden_sizes))} -> {cfg.n_classes}")
    if args.nir_profile == "lif-compat":
        _print_lif_compat_agreement(job, path, args.calibrate)
    return [path]


def _write_checked_nir(model, path: Path, source_sha256: str) -> None:
    if is_spiking_ssm(model):
        from silif_deploy.converters.nir_export import write_nir
        from silif_deploy.converters.nir_spiking_ssm import check_round_trip

        write_nir(model, path, source_sha256=source_sha256)
        check_round_trip(path, model)
        return
    from silif_deploy.converters.float_params import float_network
    from silif_deploy.converters.nir_export import write_nir
    from silif_deploy.converters.nir_import import check_round_trip

    folded = float_network(model)
    write_nir(model, path, source_sha256=source_sha256, folded=folded)
    check_round_trip(path, folded)


def _print_lif_compat_agreement(job: ExportJob, path: Path, data: str | None) -> None:
    """Measure the lossy file against the exact model on a probe input, so nobody mistakes one for the other."""
    from silif_deploy.converters.datasets import load_input
    from silif_deploy.converters.nir_import import read_nir
    from silif_deploy.converters.nir_lif_compat import agreement, run_lif_compat
    from silif_deploy.deploy.pipeline import SyntheticProbe

    if data is None:
        probe = SyntheticProbe()
        x, what = probe.generate(job.model.config.n_inputs), f"a synthetic SSC-like probe ({probe.samples} x {probe.steps} steps)"
    else:
        x, what = load_input(data, n_channels=job.model.config.n_inputs).x, f"'{data}'"
    m = agreement(job.model.run(x), run_lif_compat(read_nir(path), x))
    spikes = " / ".join(f"{100 * a:.1f} %" for a in m["spike_agreement"])
    print(f"lif-compat (lossy) agrees with the exact model on {m['predictions_equal']} of {m['samples']} predictions "
          f"and on {spikes} of the hidden spike bins (per layer), measured on {what}; "
          f"`simulate {path.name}` runs this lossy reading")


def _export_loihi2(job: ExportJob, args: argparse.Namespace) -> list[Path]:
    from silif_deploy.deploy.pipeline import export_loihi2
    from silif_deploy.deploy.reporting import print_summary

    if args.calibrate is None and is_spiking_ssm(job.model):
        print(f"note: no --calibrate: the {job.model.config.family} network's scales assume event-count inputs and the "
              "profile's default ranges; calibrate on representative input for a faithful fixed point", file=sys.stderr)
    result = export_loihi2(job.source, job.outdir, model_type=args.model_type, profile=args.profile,
                           calibrate=args.calibrate, model=job.model, check_nir=args.check_nir)
    print_summary(result.report)
    print(f"export took {result.seconds:.1f} s")
    return [result.nir, result.artifact, result.report_json, result.report_md, result.report_png]


def _export_netx(job: ExportJob, args: argparse.Namespace) -> list[Path]:
    from silif_deploy.converters.datasets import open_input
    from silif_deploy.converters.netx_export import write_netx
    from silif_deploy.deploy.pipeline import quantize_model
    from silif_deploy.hw_models.profile import load_profile

    hw = load_profile(args.profile)
    x = None if args.calibrate is None else open_input(args.calibrate, n_channels=job.model.config.n_inputs)
    network = quantize_model(job.model, hw, x, netx=True)
    network.provenance = provenance(source_checkpoint=job.source.name, source_sha256=job.source_sha256,
                                    hardware_profile=hw.name)
    path = job.output(".netx.h5")
    write_netx(network, path)
    # netx builds every layer of a file (skipped ones too) and cannot build ours: the readout alone,
    # behind an input layer of its fan-in, is a file netx loads as it is
    readout = network.replace(hidden=[], n_inputs=network.readout.synapse.fan_in,
                              model_type=f"{network.model_type}-readout")
    readout_path = job.output(".readout.netx.h5")
    write_netx(readout, readout_path)
    print(f"netx: {len(network.hidden)} hidden layers as {network.model_type} (neuron/type SILIF_FXP, our extension: "
          f"netx cannot load them), readout as netx CUBA, on netx's grid; {readout_path.name} holds the readout alone, "
          "which lava-dl's netx.hdf5.Network loads and runs bit for bit as our simulator")
    return [path, readout_path]


def _refuse_for_spiking_ssm(config, args: argparse.Namespace, source: Path) -> None:
    """What a SpikingSSM / binary-S4D model cannot be exported as, in one line, before any write."""
    from silif_deploy.converters.families.spiking_ssm import require_fixed_point, require_streamable

    if args.target == "netx":
        raise SilifDeployError(f"'{source}': --target netx writes chains of Dense and neuron layers; a {config.family} "
                               "network's S4D, GLU and residual stages have no netx form: use --target loihi2")
    if args.target == "loihi2":
        require_fixed_point(config, f"'{source}' for --target loihi2")
        return
    require_streamable(config, f"'{source}' for --target nir")
    if args.nir_profile != "exact":
        raise SilifDeployError(f"--nir-profile {args.nir_profile} states SiLIF-family layers as LIFs; a {config.family} "
                               "model has only the exact profile: drop --nir-profile")
    if config.neuron == "sdn":
        raise SilifDeployError("--target nir writes the exact LIF soma (what hardware runs); the SDN is a training "
                               "surrogate with no NIR form: drop --neuron sdn")


TARGETS: dict[str, Callable[[ExportJob, argparse.Namespace], list[Path]]] = {
    "nir": _export_nir, "loihi2": _export_loihi2, "netx": _export_netx,
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from silif_deploy.converters.nir_export import PROFILES

    p.add_argument("model", help="checkpoint (.pt/.pth) or NIR file (.nir)")
    p.add_argument("--target", required=True, choices=sorted(TARGETS), help="output format")
    p.add_argument("-o", "--outdir", default=None, help=f"output folder (default: {DEFAULT_OUT_ROOT}/<name>)")
    p.add_argument("--model-type", default=None, help="needed for adLIF / cAdLIF checkpoints (identical keys)")
    add_float_model_arguments(p)
    p.add_argument("--nir-profile", choices=PROFILES, default="exact",
                   help="exact (default: round-trips bit-exactly) or lif-compat "
                        "(lossy: one LIF per layer, for snntorch)")
    p.add_argument("--check-nir", action="store_true",
                   help="nir/loihi2: read the NIR file back and refuse (writing nothing) unless it gives the "
                        "exported float network bit for bit")
    p.add_argument("--profile", default=None, metavar="NAME_OR_TOML",
                   help="loihi2/netx: hardware profile, loihi2 (default), loihi2-wide or a .toml path")
    p.add_argument("--calibrate", default=None, metavar="INPUT",
                   help="loihi2/netx: input file to calibrate state ranges on (and to report on); default: weights only, "
                        "reported on a synthetic SSC-like probe; nir lif-compat: the input its agreement with the "
                        "exact model is measured on")


def run(args: argparse.Namespace) -> int:
    source = Path(args.model)
    model = load_float_model(source, model_type=args.model_type, deployed_by=f"export --target {args.target}",
                             **float_model_options(args))
    if args.model_type is not None and model.config.model_type != args.model_type:
        raise SilifDeployError(f"'{source}' holds a {model.config.model_type} network, not {args.model_type}")
    if is_spiking_ssm(model):
        _refuse_for_spiking_ssm(model.config, args, source)
    name = model_name(source)
    outdir = Path(args.outdir) if args.outdir else DEFAULT_OUT_ROOT / name
    job = ExportJob(model=model, source=source, source_sha256=sha256_file(source), outdir=outdir, name=name)
    for path in TARGETS[args.target](job, args):
        print(f"wrote {path}")
    return 0
