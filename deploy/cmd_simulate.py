"""``silif-deploy simulate``: run a model or artifact on an input and save its outputs.

One pass over the input, batch by batch: each batch is read, run, written to the output (see
:mod:`.simulation_output`) and, with ``--report``, tallied; memory stays one batch whatever the
number of samples. ``OUT`` and ``--report``'s file appear together or neither does.
"""

from __future__ import annotations

import argparse

from silif_deploy.deploy.engines import ENGINES

from silif_deploy.deploy.arg_types import positive_int

HELP = "run a checkpoint, NIR file or fixed-point artifact on an input and write OUT.h5 or OUT.npz"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="checkpoint (.pt/.pth), NIR file (.nir) or fixed-point artifact (.loihi2.h5)")
    p.add_argument("--input", required=True, help="input: .npy/.npz (batch, time, channels) or an SHD/SSC .h5 file")
    p.add_argument("--out", required=True,
                   help="output .h5 (chunked HDF5, spikes packed 1 bit each) or .npz (plain arrays): scores, "
                        "prediction, labels, spike_counts, overflow_events, provenance and summary; more with --record")
    p.add_argument("--record", default=None, metavar="WHAT",
                   help="also write, comma-separated: spikes (spikes_<i>), readout (readout_u), states "
                        "(state_<name>), or all")
    p.add_argument("--engine", choices=ENGINES, default=None, help="default: fixed for an artifact, float otherwise")
    p.add_argument("--model-type", default=None, help="needed for adLIF / cAdLIF checkpoints (identical keys)")
    p.add_argument("--record-states", action="store_true", help="the same as adding states to --record")
    p.add_argument("--report", default=None,
                   help="write the per-layer report (JSON) for this input (with OUT, or neither; needs the exact model, "
                        "not a lif-compat NIR file)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="samples per batch (>= 1)")


def run(args: argparse.Namespace) -> int:
    from silif_deploy.converters.datasets import open_input
    from silif_deploy.converters.files import atomic_outputs, provenance, sha256_file
    from silif_deploy.deploy.engines import open_engine
    from silif_deploy.deploy.progress import progress
    from silif_deploy.deploy.simulation_output import SimulationWriter, output_format, parse_record

    record = parse_record(args.record, states=args.record_states)
    fmt = output_format(args.out)
    engine = open_engine(args.model, args.engine, model_type=args.model_type, record_states="states" in record,
                         keep_spikes="spikes" in record or args.report is not None,
                         exact_for="--report" if args.report else None)
    source = open_input(args.input, n_channels=engine.n_inputs, counts_only=engine.counts_only,
                        max_count=engine.max_count)
    source.start_hashing()
    report = None
    if args.report:
        from silif_deploy.deploy.reporting import SimulationReport

        report = SimulationReport(args.model, engine, model_type=args.model_type)
    with atomic_outputs(args.out, *([args.report] if args.report else [])) as tmps:  # both files, or neither
        writer = SimulationWriter(tmps[0], fmt, len(source), engine.hidden_sizes, record)
        try:
            with progress(len(source), f"simulate ({engine.name})") as bar:
                for x, labels in source.batches(args.batch_size):
                    result = engine.run(x)
                    writer.append(result, labels)
                    if report is not None:
                        report.add(x, result, labels)
                    bar.update(len(x))
            network = engine.network
            summary = writer.finish(provenance(
                input_sha256=source.source_sha256, model_sha256=sha256_file(args.model), engine=engine.name,
                hardware_profile=None if network is None else network.profile.name,
                artifact_provenance=None if network is None else network.provenance,
                record=sorted(record),
            ), labelled=source.labels is not None)
        except BaseException:
            writer.abort()
            raise
        if report is not None:
            report.write(tmps[1], source)
    _print_summary(summary)
    return 0


def _print_summary(summary: dict) -> None:
    for layer in summary["layers"]:
        print(f"layer {layer['layer']}: {layer['neurons']} neurons, {layer['spikes_per_sample']:.1f} spikes/sample, "
              f"sparsity {layer['sparsity']:.4f}")
    line = f"{summary['samples']} samples"
    if "accuracy" in summary:
        line += f"; accuracy {summary['accuracy']:.4f}"
    print(line)
