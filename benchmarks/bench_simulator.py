"""Benchmark: the bit-accurate simulator against float PyTorch eval and Lava, side by side.

    .venv/bin/python benchmarks/bench_simulator.py [--quick] [--no-lava] [--json PATH]

Networks: the authors' SSC SiLIF and C-SiLIF checkpoints (140 → 512 → 512 → 35, 300 steps) from
``examples/models`` (the same files as ``../shared/reference_models``), quantized with the default
``loihi2`` profile. Input: SSC-like event counts from ``SyntheticProbe``: every (step, channel) bin
is non-zero with probability 0.06 and then holds a count drawn uniformly from 1–3, the statistics
of the shared golden SSC inputs (about 2,500 non-zero bins and 5,000 events per sample).

Every figure is measured in this run, one after the other, so compare ratios: the machine is
shared and noisy. Thread settings are part of every label: simulator threads are numba's
(``numba.set_num_threads``), float threads torch's (``torch.set_num_threads``). The simulator is
timed after its first call (numba compilation, cached on disk). Lava runs in ``.venv-lava`` through
``benchmarks/bench_lava.py`` on a few short samples; its per-step time is scaled to 303 steps
(300 + one per Dense), its build and compile time per sample is reported apart. Scaling: batch
size, time steps and layer width (untrained networks of that width). Memory: a fresh process
streams 2,000 and 20,000 distinct samples through ``simulate_batches``; its peak RSS (VmHWM) must
not grow with the count.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import torch

from silif_deploy import load_model
from silif_deploy.converters.artifact import write_artifact
from silif_deploy.converters.float_params import float_network
from silif_deploy.converters.quantize import quantize
from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork
from silif_deploy.deploy.pipeline import SyntheticProbe
from silif_deploy.hw_models.profile import load_profile
from silif_deploy.hw_models.simulator import simulate, simulate_batches

REPO = Path(__file__).resolve().parents[1]
MODELS = {"silif": REPO / "examples/models/ssc_silif_2x512.pth", "csilif": REPO / "examples/models/ssc_csilif_2x512.pth"}
RESULTS = REPO / "benchmarks/results"
LAVA_PYTHON = REPO / ".venv-lava/bin/python"
LAVA_BENCH = REPO / "benchmarks/bench_lava.py"
SPEC_LAVA_MS_PER_STEP = 1.34  # metrics_energy.md §5: Lava 0.10 fixed_pt, SSC 2×512 shape (Dense + LIF × 3)
STEPS, CHANNELS = 300, 140


def probe(samples: int, steps: int = STEPS, seed: int = 0) -> np.ndarray:
    return SyntheticProbe(samples=samples, steps=steps, seed=seed).generate(CHANNELS)


def best_of(fn, repeats: int) -> float:
    """The shortest of ``repeats`` wall times: the run least disturbed by other work."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def simulator_rate(network, x: np.ndarray, threads: int, full: bool, repeats: int) -> float:
    """Samples/s: ``full`` = ``simulate`` (every output, spike rasters included), else streaming
    without rasters (what an accuracy run over a data set needs)."""
    numba.set_num_threads(threads)
    if full:
        run = lambda: simulate(network, x)  # noqa: E731
    else:
        run = lambda: [r.prediction for r in simulate_batches(network, x, keep_spikes=False)]  # noqa: E731
    simulate(network, x[:2])  # compilation (or loading it from the disk cache) is not timed
    return len(x) / best_of(run, repeats)


def float_rate(model, x: np.ndarray, threads: int, batch_size: int, repeats: int) -> float:
    torch.set_num_threads(threads)
    xt = torch.as_tensor(x, dtype=torch.float32)

    def run():
        with torch.no_grad():
            for i in range(0, len(xt), batch_size):
                model(xt[i : i + batch_size])

    run()  # warm-up
    return len(x) / best_of(run, repeats)


def lava_ms_per_step(artifact: Path, x: np.ndarray) -> tuple[float, dict | None, str]:
    """Lava's per-step wall time on ``x`` (a few short samples), or the spec's figure without Lava."""
    if not (LAVA_PYTHON.exists() and LAVA_BENCH.exists()):
        return SPEC_LAVA_MS_PER_STEP, None, "spec figure (metrics_energy.md §5), not measured here: no .venv-lava"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.npy"
        np.save(path, x)
        cmd = [str(LAVA_PYTHON), str(LAVA_BENCH), str(artifact), "--input", str(path), "--samples", str(len(x)),
               "--steps", str(x.shape[1]), "--json"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return SPEC_LAVA_MS_PER_STEP, None, f"spec figure (metrics_energy.md §5), not measured here: bench_lava.py failed ({tail})"
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["lava_ms_per_step"], data, f"measured: Lava fixed_pt, {len(x)} samples x {x.shape[1]} steps"


_STREAM_CODE = """
import json, sys, time
import numba, numpy as np
from silif_deploy.converters.artifact import read_artifact
from silif_deploy.deploy.pipeline import SyntheticProbe
from silif_deploy.hw_models.simulator import simulate, simulate_batches
artifact, samples, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def peak_rss_mib():  # VmHWM: this process's own peak (ru_maxrss would carry over the parent's across exec)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
numba.set_num_threads(threads)
net = read_artifact(artifact)
simulate(net, SyntheticProbe(samples=2).generate(140))
rss_before = peak_rss_mib()
generating = 0.0
def batches():  # distinct samples, generated 32 at a time (small temporaries); generation is not timed
    global generating
    for start in range(0, samples, batch):
        t = time.perf_counter()
        n = min(batch, samples - start)
        x = np.concatenate([SyntheticProbe(samples=min(32, n - i), seed=start + i).generate(140) for i in range(0, n, 32)])
        generating += time.perf_counter() - t
        yield x
started = time.perf_counter()
predictions = [r.prediction for r in simulate_batches(net, batches(), keep_spikes=False)]
wall = time.perf_counter() - started
print(json.dumps({"samples": sum(map(len, predictions)), "simulator_s": wall - generating, "generating_s": generating,
                  "rss_after_warmup_mib": rss_before,
                  "peak_rss_mib": peak_rss_mib()}))
"""


def streaming(artifact: Path, samples: int, threads: int = 2, batch: int = 256) -> dict:
    """Stream ``samples`` SSC-like samples through a fresh process; its wall time and peak RSS."""
    out = subprocess.run([sys.executable, "-c", _STREAM_CODE, str(artifact), str(samples), str(batch), str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def untrained(width: int):
    """An untrained SiLIF of that width (seeded init): its activity differs from a trained net's."""
    torch.manual_seed(0)
    return quantize(float_network(SpikingNetwork(NetworkConfig("silif", CHANNELS, [width, width], 35)).eval()), load_profile())


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    names = [l.split(":", 1)[1].strip() for l in cpuinfo.read_text().splitlines() if l.startswith("model name")] if cpuinfo.exists() else []
    return names[0] if names else platform.processor() or platform.machine()


def row(label: str, rate: float, reference: float | None = None) -> str:
    ratio = f"{rate / reference:8.2f}x" if reference else ""
    return f"  {label:50s} {rate:9.1f} /s {1e3 / rate:9.3f} ms {ratio}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="64 samples, fewer repeats, streaming 2,000 vs 4,000 samples")
    p.add_argument("--no-lava", action="store_true", help="skip the Lava run (use the spec's figure)")
    p.add_argument("--json", type=Path, default=None,
                   help="where to write the results (default: benchmarks/results/latest.json; --quick writes none)")
    args = p.parse_args()
    from silif_deploy.deploy.cli import reuse_freed_memory

    reuse_freed_memory()  # the allocator setting the CLI runs with, for the float eval as for the simulator
    if args.json is None and not args.quick:
        args.json = RESULTS / "latest.json"
    n, repeats = (64, 1) if args.quick else (256, 3)
    x = probe(n)
    results: dict = {
        "machine": {"cpu": cpu_name(), "cores": numba.config.NUMBA_NUM_THREADS,
                    "python": platform.python_version(), "numba": numba.__version__, "numpy": np.__version__,
                    "torch": torch.__version__},
        "input": {"generator": "SyntheticProbe(activity=0.06, max_count=3)", "samples": n, "steps": STEPS,
                  "channels": CHANNELS, "nonzero_bins_per_sample": float(np.count_nonzero(x) / n),
                  "events_per_sample": float(x.sum() / n)},
        "models": {},
    }
    print(f"SSC-like input: {n} samples x {STEPS} steps x {CHANNELS} channels, "
          f"{results['input']['nonzero_bins_per_sample']:,.0f} non-zero bins and "
          f"{results['input']['events_per_sample']:,.0f} events per sample")
    RESULTS.mkdir(parents=True, exist_ok=True)
    artifacts = {}
    for name, path in MODELS.items():
        model = load_model(path).eval()
        network = quantize(float_network(model), load_profile())
        artifacts[name] = RESULTS / f"ssc_{name}.loihi2.h5"
        write_artifact(network, artifacts[name])
        rates = {
            "simulator, streaming, 1 thread": simulator_rate(network, x, 1, False, repeats),
            "simulator, streaming, 2 threads": simulator_rate(network, x, 2, False, repeats),
            "simulator, simulate() full outputs, 2 threads": simulator_rate(network, x, 2, True, repeats),
            "float torch eval, 1 thread, batch 64": float_rate(model, x, 1, 64, repeats),
            "float torch eval, 1 thread, batch 256": float_rate(model, x, 1, 256, repeats),
            "float torch eval, 2 threads, batch 64": float_rate(model, x, 2, 64, repeats),
            "float torch eval, 2 threads, batch 256": float_rate(model, x, 2, 256, repeats),
        }
        best_float = max(v for k, v in rates.items() if k.startswith("float"))
        lava_x = probe(2 if args.quick else 3, steps=50, seed=1)
        lava_ms, lava_data, lava_source = (SPEC_LAVA_MS_PER_STEP, None, "spec figure (metrics_energy.md §5), not measured here: --no-lava") \
            if args.no_lava else lava_ms_per_step(artifacts[name], lava_x)
        lava_rate = 1e3 / (lava_ms * (STEPS + network.delay))
        rates["Lava fixed_pt, stepping only, 1 sample at a time"] = lava_rate
        print(f"\n{name} 2x512, {STEPS} steps: samples/s, ms/sample, and x the best float eval")
        for label, rate in rates.items():
            print(row(label, rate, best_float))
        sim = rates["simulator, streaming, 2 threads"]
        setup = f"; plus {lava_data['lava_build_s'] + lava_data['lava_compile_s']:.1f} s build + compile per sample" if lava_data else ""
        print(f"  Lava: {lava_ms:.2f} ms/step x {STEPS + network.delay} steps [{lava_source}]{setup}")
        print(f"  simulator (streaming, 2 threads) / Lava: {sim / lava_rate:,.0f}x;  / best float eval: {sim / best_float:.2f}x")
        results["models"][name] = {"samples_per_s": rates, "lava_ms_per_step": lava_ms, "lava_source": lava_source,
                                   "lava_run": lava_data, "speedup_vs_lava": sim / lava_rate,
                                   "speedup_vs_best_float": sim / best_float}

    network = quantize(float_network(load_model(MODELS["silif"])), load_profile())
    numba.set_num_threads(2)
    scaling: dict[str, dict[str, float]] = {"batch": {}, "steps": {}, "width": {}}
    for batch in (1, 16, 64, 256):
        xb = probe(batch)
        scaling["batch"][str(batch)] = 1e3 * best_of(lambda: simulate(network, xb, batch_size=batch), repeats) / batch
    for steps in (100, 300, 1000):
        xs = probe(64, steps=steps)
        scaling["steps"][str(steps)] = 1e3 * best_of(lambda: simulate(network, xs), repeats) / 64
    x64 = probe(64)
    for width in (128, 512, 1024):
        wide = untrained(width)
        simulate(wide, x64[:2])
        scaling["width"][str(width)] = 1e3 * best_of(lambda: simulate(wide, x64), repeats) / 64
    print("\nscaling, SiLIF, simulate() full outputs, 2 threads, ms per sample:")
    print("  batch size " + "  ".join(f"{k}: {v:.3f}" for k, v in scaling["batch"].items()))
    print("  time steps " + "  ".join(f"{k}: {v:.3f}" for k, v in scaling["steps"].items()) + "   (64 samples)")
    print("  width      " + "  ".join(f"{k}: {v:.3f}" for k, v in scaling["width"].items())
          + "   (2 layers of that width, untrained, 64 samples)")
    results["scaling_ms_per_sample"] = scaling

    counts = (2_000, 4_000) if args.quick else (2_000, 20_000)
    print("\nstreaming SiLIF through simulate_batches(keep_spikes=False), batches of 256, 2 threads, fresh process each:")
    stream = {}
    for samples in counts:
        stream[str(samples)] = streaming(artifacts["silif"], samples)
        s = stream[str(samples)]
        print(f"  {samples:6,d} samples: {s['simulator_s']:6.1f} s in the simulator ({samples / s['simulator_s']:,.0f} samples/s), "
              f"peak RSS {s['peak_rss_mib']:6.1f} MiB (after warm-up: {s['rss_after_warmup_mib']:.1f} MiB; "
              f"+{s['generating_s']:.1f} s generating input)")
    results["streaming"] = stream
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
