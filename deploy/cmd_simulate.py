"""``silif-deploy simulate``: run a model or artifact on an input and save its outputs.

One pass over the input, batch by batch: each batch is read, run, written to the output (see
:mod:`.simulation_output`) and, with ``--report``, tallied; memory stays one batch whatever the
number of samples. With ``--scheduler`` the batches are shards of samples run on a Dask cluster
(the workers read the input themselves), appended in shard order. ``OUT`` and ``--report``'s file appear
together or neither does.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from silif_deploy.deploy.arg_types import positive_int
from silif_deploy.deploy.batching import BATCH_SIZE
from silif_deploy.deploy.engines import ENGINES, add_float_model_arguments

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
    add_float_model_arguments(p)
    p.add_argument("--record-states", action="store_true", help="the same as adding states to --record")
    p.add_argument("--report", default=None,
                   help="write the per-layer report (JSON) for this input (with OUT, or neither; needs the exact model, "
                        "not a lif-compat NIR file)")
    p.add_argument("--batch-size", type=positive_int, default=BATCH_SIZE,
                   help=f"samples per batch (>= 1, default {BATCH_SIZE})")
    from silif_deploy.deploy.sharding import add_scheduler_argument

    add_scheduler_argument(p, shard_size=True)


def run(args: argparse.Namespace) -> int:
    from silif_deploy.converters.files import atomic_outputs, provenance, sha256_file
    from silif_deploy.deploy import sharding
    from silif_deploy.deploy.engines import float_model_options, open_engine
    from silif_deploy.deploy.simulation_output import SimulationWriter, output_format, parse_record
    from silif_deploy.errors import SilifDeployError

    record = parse_record(args.record, states=args.record_states)
    fmt = output_format(args.out)
    scheduler = sharding.scheduler_address(args.scheduler)
    if scheduler is not None and args.report:
        raise SilifDeployError("--report runs in this process; drop --scheduler, or run `silif-deploy report "
                               "ARTIFACT --input X --scheduler ADDRESS` for the report of a large input")
    options = float_model_options(args)
    if scheduler is not None and options != float_model_options(argparse.Namespace()):
        raise SilifDeployError("--neuron and --norm-placement apply in this process; drop --scheduler")
    engine = open_engine(args.model, args.engine, model_type=args.model_type, record_states="states" in record,
                         keep_spikes="spikes" in record or args.report is not None,
                         exact_for="--report" if args.report else None, **options)
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            source, report = _open_here(args, engine)
            samples, batches = len(source), _run_here(source, engine, args.batch_size, report)
        else:
            client = stack.enter_context(sharding.dask_client(scheduler=scheduler))
            source = report = None
            info = sharding.inspect_input(client, args.input, engine.n_inputs)
            samples = info.samples
            batches = sharding.iter_shards(client, sharding.simulate_shard, args.input, args.model, args.engine,
                                           args.model_type, "states" in record, args.batch_size, "spikes" in record,
                                           shard_size=args.shard_size, desc=f"simulate ({engine.name}) shards")
        with atomic_outputs(args.out, *([args.report] if args.report else [])) as tmps:  # both files, or neither
            writer = SimulationWriter(tmps[0], fmt, samples, engine.hidden_sizes, record)
            try:
                for result, labels in batches:
                    writer.append(result, labels)
                network = engine.network
                summary = writer.finish(provenance(
                    input_sha256=info.sha256 if source is None else source.source_sha256,
                    model_sha256=sha256_file(args.model), engine=engine.name,
                    hardware_profile=None if network is None else network.profile.name,
                    artifact_provenance=None if network is None else network.provenance,
                    record=sorted(record),
                ), labelled=info.labelled if source is None else source.labels is not None)
            except BaseException:
                writer.abort()
                raise
            if report is not None:
                report.write(tmps[1], source)
    _print_summary(summary, engine.layer_names)
    return 0


def _open_here(args: argparse.Namespace, engine):
    """The input opened for ``engine`` (hashed in a thread meanwhile) and, with ``--report``, its report."""
    from silif_deploy.converters.datasets import open_input

    source = open_input(args.input, n_channels=engine.n_inputs, max_count=engine.max_count)
    source.start_hashing()
    report = None
    if args.report:
        from silif_deploy.deploy.report_builder import SimulationReport

        report = SimulationReport(args.model, engine, model_type=args.model_type)
    return source, report


def _run_here(source, engine, batch_size: int, report) -> Iterator[tuple]:
    """(result, labels) of each batch, run in this process (and tallied into ``report``)."""
    from silif_deploy.deploy.batching import batches

    for x, labels in batches(source, f"simulate ({engine.name})", batch_size):
        result = engine.run(x)
        if report is not None:
            report.add(x, result, labels)
        yield result, labels


def _print_summary(summary: dict, names: list[str]) -> None:
    for layer, name in zip(summary["layers"], names):
        print(f"{name}: {layer['neurons']} neurons, {layer['spikes_per_sample']:.1f} spikes/sample, "
              f"sparsity {layer['sparsity']:.4f}")
    line = f"{summary['samples']} samples"
    if "accuracy" in summary:
        line += f"; accuracy {summary['accuracy']:.4f}"
    print(line)
