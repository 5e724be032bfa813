"""Benchmark: the bit-accurate simulator against float PyTorch eval and Lava, side by side.

    .venv/bin/python benchmarks/bench_simulator.py [--quick] [--json PATH]

Networks: the authors' SSC SiLIF and C-SiLIF checkpoints (140 → 512 → 512 → 35, 300 steps)
quantized with the default ``loihi2`` profile. Input: SSC-like event counts from
``SyntheticProbe`` (every bin non-zero with probability 0.06, counts uniform in 1..3: the
statistics of the shared golden SSC inputs, about 2,500 non-zero bins and 5,000 events per
sample). Every figure is measured in this run; the machine is noisy, so compare the ratios.
Thread settings are stated with each timing (numba threads for the simulator, torch threads for
the float model).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
import torch

from silif_deploy import load_model
from silif_deploy.converters.float_params import float_network
from silif_deploy.converters.quantize import quantize
from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork
from silif_deploy.deploy.pipeline import SyntheticProbe
from silif_deploy.hw_models.profile import load_profile
from silif_deploy.hw_models.simulator import simulate, simulate_batches

REPO = Path(__file__).resolve().parents[1]
MODELS = {"silif": REPO / "examples/models/ssc_silif_2x512.pth", "csilif": REPO / "examples/models/ssc_csilif_2x512.pth"}
LAVA_PYTHON = REPO / ".venv-lava/bin/python"
LAVA_BENCH = REPO / "benchmarks/bench_lava.py"
SPEC_LAVA_S_PER_SAMPLE = 0.4  # loihi_lava.md §6: 1.34 ms/step × 300 steps, measured on a 2-core machine


def probe(samples: int, steps: int = 300, seed: int = 0) -> np.ndarray:
    return SyntheticProbe(samples=samples, steps=steps, seed=seed).generate(140)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def fixed_rate(network, x: np.ndarray, threads: int, batch_size: int = 256, repeats: int = 2) -> float:
    numba.set_num_threads(threads)
    simulate(network, x[:2])  # compile outside the timing
    return len(x) / best_of(lambda: simulate(network, x, batch_size=batch_size), repeats)


def float_rate(model, x: np.ndarray, threads: int, batch_size: int, repeats: int = 2) -> float:
    torch.set_num_threads(threads)
    xt = torch.as_tensor(x, dtype=torch.float32)

    def run():
        with torch.no_grad():
            for i in range(0, len(xt), batch_size):
                model(xt[i : i + batch_size])

    return len(x) / best_of(run, repeats)


def lava_seconds_per_sample(artifact: Path, steps: int) -> tuple[float, str]:
    """Per-sample Lava time (extrapolated from a short run), or the spec's figure if Lava is absent."""
    if LAVA_PYTHON.exists() and LAVA_BENCH.exists():
        out = subprocess.run([str(LAVA_PYTHON), str(LAVA_BENCH), str(artifact), "--json"],
                             capture_output=True, text=True, timeout=900)
        if out.returncode == 0:
            data = json.loads(out.stdout.strip().splitlines()[-1])
            # stepping time extrapolated to a full sample; build, compile and read-back are extra
            return data["lava_ms_per_step"] / 1e3 * (steps + 3), (
                f"measured: Lava fixed_pt {data['lava_ms_per_step']:.2f} ms/step over {data['samples']} samples, "
                f"plus {data['lava_build_s'] + data['lava_compile_s'] + data['lava_read_s']:.2f} s build/compile/read per sample")
        print(f"  bench_lava.py failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
    return SPEC_LAVA_S_PER_SAMPLE, "spec figure (loihi_lava.md §6), NOT measured here"


def peak_memory_streaming(artifact: Path, samples: int) -> tuple[float, float]:
    """(wall s, peak RSS MiB) of streaming ``samples`` samples through a fresh process."""
    code = f"""
import time, resource, numpy as np
from silif_deploy.converters.artifact import read_artifact
from silif_deploy.deploy.pipeline import SyntheticProbe
from silif_deploy.hw_models.simulator import simulate, simulate_batches
net = read_artifact({str(artifact)!r})
simulate(net, SyntheticProbe(samples=2).generate(140))
def batches():
    for seed in range(0, {samples}, 256):
        yield SyntheticProbe(samples=min(256, {samples} - seed), seed=seed).generate(140)
t = time.perf_counter(); correct = 0
for r in simulate_batches(net, batches()):
    correct += int((r.prediction == 0).sum())
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall, rss = out.stdout.split()
    return float(wall), float(rss)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer samples and no 20,000-sample run")
    p.add_argument("--json", type=Path, default=REPO / "benchmarks/results/latest.json")
    args = p.parse_args()
    n = 64 if args.quick else 256
    results: dict[str, object] = {"machine_cores": numba.config.NUMBA_NUM_THREADS, "samples": n}
    x = probe(n)
    print(f"SSC-like input: {n} samples x 300 steps x 140 channels, {np.count_nonzero(x) / n:,.0f} non-zero bins/sample")
    artifacts = {}
    for name, path in MODELS.items():
        model = load_model(path)
        network = quantize(float_network(model), load_profile())
        row = {
            "fixed_1thread": fixed_rate(network, x, 1),
            "fixed_2threads": fixed_rate(network, x, 2),
            "float_1thread_b64": float_rate(model, x, 1, 64),
            "float_2threads_b64": float_rate(model, x, 2, 64),
            "float_1thread_b256": float_rate(model, x, 1, 256),
        }
        results[name] = row
        print(f"\n{name} 2x512, samples/s (higher is better):")
        for key, value in row.items():
            print(f"  {key:22s} {value:9.1f}   ({1e3 / value:6.2f} ms/sample)")
        best_float = max(v for k, v in row.items() if k.startswith("float"))
        print(f"  simulator (2 threads) / best float eval: {row['fixed_2threads'] / best_float:.2f}x")
        if name == "silif":
            from silif_deploy.converters.artifact import write_artifact

            artifacts[name] = REPO / "benchmarks/results/ssc_silif.loihi2.h5"
            artifacts[name].parent.mkdir(parents=True, exist_ok=True)
            write_artifact(network, artifacts[name])
            lava_s, how = lava_seconds_per_sample(artifacts[name], 300)
            row["lava_s_per_sample"], row["lava_source"] = lava_s, how
            print(f"  Lava: {lava_s:.3f} s/sample [{how}]; simulator (2 threads) is "
                  f"{lava_s * row['fixed_2threads']:.0f}x faster per sample")

    network = quantize(float_network(load_model(MODELS["silif"])), load_profile())
    numba.set_num_threads(2)
    print("\nscaling (SiLIF, 2 threads), ms/sample:")
    scaling = {}
    for batch in (1, 16, 64, 256):
        xb = probe(batch)
        scaling[f"batch_{batch}"] = 1e3 * best_of(lambda: simulate(network, xb, batch_size=batch), 3) / batch
    for steps in (100, 300, 1000):
        xs = probe(64, steps=steps)
        scaling[f"steps_{steps}"] = 1e3 * best_of(lambda: simulate(network, xs), 2) / 64
    x64 = probe(64)
    for width in (128, 512, 1024):
        # untrained SiLIF of that width (Xavier weights, BN identity): activity differs from a trained net
        torch.manual_seed(0)
        untrained = SpikingNetwork(NetworkConfig("silif", 140, [width, width], 35)).eval()
        wide = quantize(float_network(untrained), load_profile())
        scaling[f"width_{width}"] = 1e3 * best_of(lambda: simulate(wide, x64), 2) / 64
    for key, value in scaling.items():
        print(f"  {key:12s} {value:8.3f}")
    results["scaling"] = scaling

    if not args.quick:
        print("\nstreaming (SiLIF, 2 threads), fresh process per run:")
        streaming = {}
        for samples in (2_000, 20_000):
            wall, rss = peak_memory_streaming(artifacts["silif"], samples)
            streaming[samples] = {"wall_s": wall, "peak_rss_mib": rss}
            print(f"  {samples:6d} samples: {wall:6.1f} s, peak RSS {rss:7.1f} MiB")
        results["streaming"] = streaming
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
