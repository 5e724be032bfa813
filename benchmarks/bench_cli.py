"""Benchmark: the commands users run (``simulate``, ``report``, ``verify --data``) against the engines.

    .venv/bin/python benchmarks/bench_cli.py [--samples 2000 20000] [--float-samples N ...]
                       [--models silif csilif] [--commands simulate report verify] [--workdir DIR]

Runs the CLI as a user does (a subprocess per command, ``silif-deploy`` on PATH of this venv) on
SSC-like inputs (``SyntheticProbe`` statistics: 6 % non-zero bins, counts 1–3; 300 steps × 140
channels) written as uncompressed ``.npz`` (``x`` uint8, ``labels``), with the authors' SSC SiLIF
and C-SiLIF checkpoints exported with the default ``loihi2`` profile. For each model, command and
size it prints, measured one after the other in this run:

- the CLI's wall time, samples/s and peak RSS (``wait4``'s ``ru_maxrss`` of that process alone);
- the engine time for the same work, in this process on the same samples already in memory: the
  fixed-point simulator (and the float PyTorch model where the command runs it: ``report`` and
  ``verify`` compare with it) over the same batches; the ratio CLI ÷ engine (target <= 1.3), in
  wall time and in CPU time (user + system, all threads): on a shared machine the wall times of
  two runs minutes apart see different loads, the CPU times much less;
- peak RSS at the smallest and largest size (target: equal within 10 %), and how much the RSS
  grew after the first quarter of each run (memory that grew with the samples read shows there;
  the peak itself differs by up to a quarter between runs of the same command; a short run's first
  quarter ends before its first batch has run, so only the largest size's growth is printed);
- the simulator against the best float PyTorch eval of the same network (target >= 5x), and
  where the simulator's time goes (input encoding, each layer), against the arithmetic floor.

The machine may be shared with other work: compare the ratios, measured side by side, more than
the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numba
import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = {"silif": REPO / "examples/models/ssc_silif_2x512.pth", "csilif": REPO / "examples/models/ssc_csilif_2x512.pth"}
CLI = Path(sys.executable).with_name("silif-deploy")
TIME = "/usr/bin/time"  # GNU time, for the peak RSS of each CLI process (Debian package "time")
STEPS, CHANNELS, CLASSES = 300, 140, 35
GEN_BATCH = 256
ADDS_PER_S_PER_CORE = 2e10
"""The arithmetic floor's rate: 8 int32 lanes × ~2.5 GHz per core (one AVX2 add per lane and cycle)."""


def chunk(k: int, n: int) -> np.ndarray:
    """Samples k·GEN_BATCH … k·GEN_BATCH + n − 1 (distinct seeds: a prefix of a longer set is the shorter set)."""
    from silif_deploy.deploy.pipeline import SyntheticProbe

    return SyntheticProbe(samples=n, steps=STEPS, seed=1000 + k).generate(CHANNELS).astype(np.uint8)


def chunks(samples: int):
    for k, start in enumerate(range(0, samples, GEN_BATCH)):
        yield chunk(k, min(GEN_BATCH, samples - start))


def write_input(path: Path, samples: int) -> None:
    """An uncompressed .npz with ``x`` (samples, 300, 140) uint8 and ``labels``, written chunk by chunk."""
    if path.exists():
        return
    tmp = path.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open("x.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_2_0(member, {"descr": "|u1", "fortran_order": False,
                                                          "shape": (samples, STEPS, CHANNELS)})
            for x in chunks(samples):
                member.write(x.tobytes())
        with zf.open("labels.npy", "w") as member:
            np.lib.format.write_array(member, np.random.default_rng(0).integers(0, CLASSES, samples))
    tmp.rename(path)


def export(name: str, workdir: Path) -> Path:
    outdir = workdir / name
    artifact = outdir / f"{MODELS[name].stem}.loihi2.h5"
    if not artifact.exists():
        subprocess.run([str(CLI), "export", str(MODELS[name]), "--target", "loihi2", "-o", str(outdir)],
                       check=True, capture_output=True)
    return artifact


def run_cli(argv: list[str]) -> dict:
    """Wall and CPU time, exit status and peak RSS (MiB) of one CLI process, and its RSS growth
    after the first quarter of its run (``rss_growth``, a fraction of the RSS then).

    The peak comes from GNU time (``/usr/bin/time -f %M``): a child's ``ru_maxrss`` starts at the
    RSS of the process that forked it, and time's is a few MB, this benchmark's hundreds. The
    growth comes from the CLI's ``VmRSS``, read every 0.2 s: the peak differs from run to run of the
    same command by up to a quarter (six runs of SiLIF ``verify`` on 2,000 samples: 832–1,039 MiB,
    set in the first seconds, by where the allocator's blocks land), but a run whose memory grew
    with the samples it has read would show it here."""
    env = {**os.environ, "SILIF_DEPLOY_PROGRESS": "0"}
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        started = time.perf_counter()
        proc = subprocess.Popen([TIME, "-f", "%M %U %S", "-o", rss.name, str(CLI), *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        trace: list[tuple[float, int]] = []
        sampler = threading.Thread(target=_trace_rss, args=(proc, started, trace))
        sampler.start()
        stdout, stderr = proc.communicate()
        wall = time.perf_counter() - started
        sampler.join()
        peak_kib, user, system = rss.read().split()[-3:]
    if proc.returncode not in (0, 1):  # verify exits 1 when the budget fails: random labels, still a full run
        raise SystemExit(f"silif-deploy {' '.join(argv)} failed ({proc.returncode}):\n{stderr}")
    early = max((kib for t, kib in trace if t <= wall / 4), default=0)
    late = max((kib for t, kib in trace if t > wall / 4), default=early)
    return {"wall_s": wall, "cpu_s": float(user) + float(system), "rss_mib": int(peak_kib) / 1024, "exit": proc.returncode,
            "rss_growth": late / early - 1 if early else 0.0, "stdout_tail": stdout.strip().splitlines()[-1:]}


def _trace_rss(proc: subprocess.Popen, started: float, trace: list[tuple[float, int]]) -> None:
    """Append (seconds since ``started``, VmRSS KiB) of GNU time's child, the CLI, until it ends."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    while proc.poll() is None:
        try:
            pid = children.read_text().split()[0]
            status = Path(f"/proc/{pid}/status").read_text()
            trace.append((time.perf_counter() - started, int(status.split("VmRSS:")[1].split()[0])))
        except (OSError, IndexError):  # not started yet, or already gone
            pass
        time.sleep(0.2)


def engine_seconds(command: str, network, model, samples: int) -> tuple[float, float]:
    """In-process engine (wall, CPU) time of the work ``command`` does on ``samples`` samples (input
    generation not timed)."""
    import torch

    from silif_deploy.deploy.batching import BATCH_SIZE
    from silif_deploy.hw_models.simulator import simulate

    total = cpu = 0.0
    for x in chunks(samples):
        cpu_started = time.process_time()  # all of this process's threads
        started = time.perf_counter()
        for i in range(0, len(x), BATCH_SIZE):  # every command walks its data BATCH_SIZE samples at a time
            xb = x[i : i + BATCH_SIZE]
            if command == "simulate":  # default record: no rasters kept
                simulate(network, xb, batch_size=len(xb), keep_spikes=False)
            elif command == "report":  # rasters (for the tallies) and the float reference
                simulate(network, xb, batch_size=len(xb))
                model.run(xb)
            else:
                model.run(xb)
                simulate(network, xb, batch_size=len(xb), keep_spikes=False)
        total += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
    del torch
    return total, cpu


def float_best(model, x: np.ndarray) -> tuple[float, str]:
    """The best float PyTorch eval rate (samples/s) over thread counts and batch sizes, each the
    best of three runs (``bench_simulator.float_rate``)."""
    import torch

    from bench_simulator import float_rate

    rates = {f"{threads} threads, batch {batch}": float_rate(model, x, threads, batch, repeats=3)
             for threads in (1, 2) for batch in (64, 256)}
    torch.set_num_threads(2)
    label = max(rates, key=rates.get)
    return rates[label], label


def breakdown(network, x: np.ndarray) -> dict[str, float]:
    """Milliseconds per sample, one thread, by stage: input encoding, then each layer's event loop,
    and (``L0 neurons`` ...) the same loop given its events with every count set to zero: the neuron
    updates and the loop alone, without the Dense accumulation (the rest of the layer's time)."""
    from silif_deploy.hw_models.neuron_loops import Events, Recording, input_events, payload_type, run_layer
    from silif_deploy.hw_models.neuron_loops import NO_STATES, NOTHING
    from silif_deploy.hw_models.simulator import CHUNK, _plan, start_index

    prepared = _plan(network).layers
    bits = network.profile.input_message_bits
    total_steps = STEPS + network.delay
    names = ["input", *(f"L{l}" if l < len(network.hidden) else "readout" for l in range(len(network.layers)))]
    times = dict.fromkeys([*names, *(f"{name} neurons" for name in names[1:])], 0.0)
    inputs = Events.empty(CHUNK, STEPS, CHANNELS, payload_type(bits))
    spikes = [Events.empty(CHUNK, total_steps, layer.size) for layer in network.layers]
    scratch = [Events.empty(CHUNK, total_steps, layer.size) for layer in network.layers]
    recordings = [Recording(start_index(l), NOTHING,
                            (NO_STATES, np.zeros((len(x), STEPS, layer.size), np.int64) if l == len(network.hidden) else NO_STATES),
                            np.zeros(len(x), np.int64)) for l, layer in enumerate(network.layers)]
    for repeat in range(2):  # the first round compiles (or loads) the kernels and is not counted
        for b0 in range(0, len(x) - CHUNK + 1, CHUNK):
            t = time.perf_counter()
            events = input_events(x[b0 : b0 + CHUNK], network.input_frac_bits, bits, inputs)
            stage = {"input": time.perf_counter() - t}
            for l, (layer, recording, name) in enumerate(zip(prepared, recordings, names[1:])):
                silent = Events(events.index, np.zeros_like(events.count), events.value)
                t = time.perf_counter()
                run_layer(layer, silent, start_index(l), scratch[l], recording, b0)
                stage[f"{name} neurons"] = time.perf_counter() - t
                t = time.perf_counter()
                events = run_layer(layer, events, start_index(l), spikes[l], recording, b0)
                stage[name] = time.perf_counter() - t
            if repeat:
                for key, seconds in stage.items():
                    times[key] += seconds
    n = (len(x) // CHUNK) * CHUNK
    return {k: 1e3 * v / n for k, v in times.items()}


def arithmetic(network, x: np.ndarray) -> tuple[float, float]:
    """(synaptic adds, neuron updates) per sample of the fixed-point run of ``x``."""
    from silif_deploy.hw_models import metrics
    from silif_deploy.hw_models.simulator import simulate

    description = metrics.describe_fixed(network)
    report = metrics.build_report(description, metrics.tally_run(description, x, simulate(network, x)),
                                  input_info={"kind": "probe"}, provenance={})
    return float(report["totals"]["sop"]), float(report["totals"]["neuron_updates"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, nargs="+", default=[2000, 20000], help="input sizes (default 2000 20000)")
    p.add_argument("--float-samples", type=int, nargs="+", default=None,
                   help="input sizes for report and verify, which run the float model too (default: --samples)")
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["silif", "csilif"])
    p.add_argument("--commands", nargs="+", choices=["simulate", "report", "verify"],
                   default=["simulate", "report", "verify"])
    p.add_argument("--workdir", type=Path, default=None, help="inputs and artifacts (default: a temporary folder)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures there")
    args = p.parse_args()

    from silif_deploy import load_model
    from silif_deploy.converters.artifact import read_artifact
    from silif_deploy.hw_models.simulator import simulate

    from silif_deploy.deploy.cli import reuse_freed_memory

    reuse_freed_memory()  # the engine measured here with the allocator the CLI runs with
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_cli_"))
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = sorted(args.samples)
    float_sizes = sorted(args.float_samples or args.samples)
    inputs = {n: workdir / f"ssc_like_{n}.npz" for n in sorted({*sizes, *float_sizes})}
    for n, path in inputs.items():
        write_input(path, n)
    cores = os.cpu_count()
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores (shared with other work while "
          f"measured: read the ratios); numba threads {numba.get_num_threads()}")
    print(f"input: SSC-like uint8 counts, {STEPS} steps x {CHANNELS} channels, sizes {', '.join(map(str, sizes))}; "
          f"(report, verify: {', '.join(map(str, float_sizes))}); files in {workdir}")
    results: dict = {"sizes": sizes, "float_sizes": float_sizes, "models": {}}
    for name in args.models:
        artifact = export(name, workdir)
        network, model = read_artifact(artifact), load_model(MODELS[name]).eval()
        probe = chunk(0, min(256, GEN_BATCH))
        simulate(network, probe[:8])  # compile / load the kernels before any timing
        print(f"\n== {name} 2x512 ({artifact.name}, default loihi2 profile)")
        print(f"  {'command':9s} {'samples':>7s} {'CLI s':>8s} {'engine s':>9s} {'CLI/eng':>8s} {'CPU s CLI':>10s} "
              f"{'engine':>7s} {'CLI/eng':>8s} {'samples/s':>10s} {'peak RSS MiB':>13s}")
        rows = {}
        for command in args.commands:
            command_sizes = sizes if command == "simulate" else float_sizes
            for n in command_sizes:
                out = workdir / f"{name}_{command}_{n}"
                argv = {
                    "simulate": ["simulate", str(artifact), "--input", str(inputs[n]), "--out", f"{out}.h5"],
                    "report": ["report", str(artifact), "--input", str(inputs[n]), "-o", str(out)],
                    "verify": ["verify", str(artifact), "--data", str(inputs[n])],
                }[command]
                cli = run_cli(argv)
                engine, engine_cpu = engine_seconds(command, network, model, n)
                rows[f"{command}/{n}"] = {**cli, "engine_s": engine, "engine_cpu_s": engine_cpu,
                                          "ratio": cli["wall_s"] / engine, "cpu_ratio": cli["cpu_s"] / engine_cpu}
                print(f"  {command:9s} {n:7d} {cli['wall_s']:8.1f} {engine:9.1f} {cli['wall_s'] / engine:8.2f} "
                      f"{cli['cpu_s']:10.1f} {engine_cpu:7.1f} {cli['cpu_s'] / engine_cpu:8.2f} "
                      f"{n / cli['wall_s']:10.0f} {cli['rss_mib']:13.0f}")
            if len(command_sizes) > 1:
                lo, hi = command_sizes[0], command_sizes[-1]
                small, large = rows[f"{command}/{lo}"]["rss_mib"], rows[f"{command}/{hi}"]["rss_mib"]
                growth = rows[f"{command}/{hi}"]["rss_growth"]
                print(f"  {command:9s} peak RSS {hi:,} vs {lo:,} samples: {100 * (large / small - 1):+.1f} %; "
                      f"the {hi:,}-sample run's RSS after its first quarter: {100 * growth:+.1f} %")
        sim_rate = len(probe) / _best_time(lambda: simulate(network, probe, keep_spikes=False))
        best, label = float_best(model, probe)
        stages = breakdown(network, probe)
        adds, updates = arithmetic(network, probe[:64])
        floor_ms = 1e3 * adds / (ADDS_PER_S_PER_CORE * numba.get_num_threads())
        print(f"  simulator {sim_rate:,.0f} samples/s ({1e3 / sim_rate:.3f} ms/sample, {numba.get_num_threads()} threads) vs "
              f"best float eval {best:,.0f} samples/s ({label}): {sim_rate / best:.2f}x (target >= 5x)")
        layers = [k for k in stages if k != "input" and not k.endswith(" neurons")]
        print(f"  where a sample's time goes (1 thread, ms): input {stages['input']:.3f}, "
              + ", ".join(f"{k} {stages[k]:.3f} (neuron updates {stages[k + ' neurons']:.3f}, "
                          f"Dense {stages[k] - stages[k + ' neurons']:.3f})" for k in layers)
              + f"; total {stages['input'] + sum(stages[k] for k in layers):.3f}")
        print(f"  arithmetic: {adds / 1e6:.1f} M synaptic adds + {updates / 1e6:.2f} M neuron updates per sample; "
              f"floor at {ADDS_PER_S_PER_CORE:.0e} adds/s/core on {numba.get_num_threads()} cores: {floor_ms:.3f} ms/sample "
              f"(the simulator takes {1e3 / sim_rate / floor_ms:.1f}x that)")
        results["models"][name] = {"cli": rows, "simulator_samples_per_s": sim_rate, "best_float_samples_per_s": best,
                                   "best_float_setting": label, "stages_ms_per_sample": stages,
                                   "synaptic_adds": adds, "neuron_updates": updates, "floor_ms": floor_ms}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")


def _best_time(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


if __name__ == "__main__":
    main()
