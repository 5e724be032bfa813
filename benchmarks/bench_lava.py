"""Wall time per step: the Lava run of a fixed-point artifact vs our simulator, same input.

Runs in the Lava environment::

    .venv-lava/bin/python benchmarks/bench_lava.py [ARTIFACT] [--input X.npy|.npz] [--samples 3] [--steps 50] [--json]

ARTIFACT defaults to ``tests/.artifacts/ssc_silif.loihi2.h5`` (written by ``tests/test_lava_fixtures.py``).
Without ``--input``, a seeded Poisson count input (rate 0.05 per channel and step) is used. Lava
builds and compiles the network once per sample: that time is reported apart from the per-step time
(measured over steps 2…T + delay). The simulator runs one sample at a time too, after a warm-up
(numba compilation); ``sim_batch`` is its per-step time over the whole batch at once.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from silif_deploy.converters.artifact import read_artifact
from silif_deploy.converters.lava_backend.runner import run_sample
from silif_deploy.hw_models.simulator import simulate

DEFAULT_ARTIFACT = Path(__file__).resolve().parents[1] / "tests" / ".artifacts" / "ssc_silif.loihi2.h5"


def load_x(path: str | None, n_inputs: int, samples: int, steps: int) -> np.ndarray:
    if path is None:
        return np.random.default_rng(0).poisson(0.05, (samples, steps, n_inputs)).astype(np.float32)
    data = np.load(path)
    x = data["input"] if hasattr(data, "files") else data
    return np.asarray(x[:samples, :steps], np.float32)


def bench(artifact: Path, x: np.ndarray) -> dict:
    network = read_artifact(artifact)
    n_samples, n_steps, _ = x.shape
    lava = [run_sample(network, network.quantize_input(x[b]).T, timeout_s=600).seconds for b in range(n_samples)]
    lava_step = sum(r["run"] for r in lava) / sum(r["steps"] for r in lava)
    simulate(network, x[:1])  # numba compilation
    total = n_steps + network.delay
    started = time.perf_counter()
    for b in range(n_samples):
        simulate(network, x[b : b + 1])
    sim_step = (time.perf_counter() - started) / (n_samples * total)
    started = time.perf_counter()
    simulate(network, x)
    sim_batch = (time.perf_counter() - started) / (n_samples * total)
    return {
        "artifact": str(artifact), "samples": n_samples, "steps_per_sample": total,
        "layers": [layer.size for layer in network.layers], "kind": network.model_type,
        "lava_ms_per_step": 1e3 * lava_step,
        "lava_build_s": float(np.mean([r["build"] for r in lava])),
        "lava_compile_s": float(np.mean([r["compile"] for r in lava])),
        "lava_read_s": float(np.mean([r["read"] for r in lava])),
        "lava_s_per_sample": float(np.mean([sum(r[k] for k in ("build", "compile", "run", "read")) for r in lava])),
        "sim_ms_per_step": 1e3 * sim_step, "sim_batch_ms_per_step": 1e3 * sim_batch,
        "ratio_lava_over_sim": lava_step / sim_step,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("artifact", nargs="?", default=str(DEFAULT_ARTIFACT))
    p.add_argument("--input", default=None, help="(samples, steps, channels) .npy, or .npz with key 'input'")
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    artifact = Path(args.artifact)
    if not artifact.is_file():
        raise SystemExit(f"{artifact} not found: run `.venv/bin/python -m pytest tests/test_lava_fixtures.py` first, or give a path")
    x = load_x(args.input, read_artifact(artifact).n_inputs, args.samples, args.steps)
    r = bench(artifact, x)
    if args.json:
        print(json.dumps(r))
        return
    print(f"{r['kind']} {' -> '.join(map(str, r['layers']))}, {r['samples']} samples x {r['steps_per_sample']} steps")
    print(f"{'':24}{'Lava fixed_pt':>16}{'simulator':>14}")
    print(f"{'ms per step':24}{r['lava_ms_per_step']:16.3f}{r['sim_ms_per_step']:14.4f}   ratio {r['ratio_lava_over_sim']:.0f}x")
    print(f"{'ms per step (batch)':24}{'':16}{r['sim_batch_ms_per_step']:14.4f}")
    print(f"Lava per sample: build {r['lava_build_s']:.2f} s, compile + first step {r['lava_compile_s']:.2f} s, "
          f"reading results {r['lava_read_s']:.2f} s; total {r['lava_s_per_sample']:.2f} s")


if __name__ == "__main__":
    main()
