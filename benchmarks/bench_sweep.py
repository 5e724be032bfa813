"""Benchmark: the sweep on the embedded Dask cluster with 1 and with 2 worker processes, side by side.

    .venv/bin/python benchmarks/bench_sweep.py [--samples 2000] [--weight-bits 4,6,8]
        [--coefficient-bits 8,12,16] [--shard-size 250] [--json PATH]

The authors' SSC SiLIF checkpoint (``examples/models/ssc_silif_2x512.pth``, 140 → 512 → 512 → 35)
swept over 3 × 3 (weight, coefficient) widths under ``loihi2``, on ``--samples`` SSC-like samples
(300 steps × 140 channels) from :class:`SyntheticProbe` (the shared golden SSC inputs' statistics)
with seeded random labels, written to a temporary ``.npz`` that the workers read themselves.

Per cluster size, measured in this run one after the other (the machine is shared: compare ratios):

* ``wall``: ``run_sweep`` on a started cluster (graph submission to the last row), and ``with
  start``: the cluster's start included, as ``silif-deploy sweep`` runs;
* ``work``: the sum over tasks of the time the task functions ran (Dask's task stream);
* Dask's overhead as a share of the work: on 1 worker, (wall − work) / work, the time the single
  worker was not running a task function (scheduling, transfers, (de)serialization, the client's
  gathering); on 2 workers, (2 · wall − work) / work, which also counts a worker idle while it
  waits for a dependency or at the tail;
* peak RSS of each worker process (VmHWM), the memory a task costs.

Targets (issue 17): 2-worker speed-up ≥ 1.7× on 2 cores; overhead < 5 % of the work.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from silif_deploy.deploy import sharding, sweep
from silif_deploy.deploy.pipeline import SyntheticProbe
from silif_deploy.hw_models.profile import load_profile

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO / "examples/models/ssc_silif_2x512.pth"
STEPS, CHANNELS, CLASSES = 300, 140, 35


def ssc_like(samples: int, path: Path) -> None:
    x = SyntheticProbe(samples=samples, steps=STEPS, seed=0).generate(CHANNELS).astype(np.uint8)  # counts 0–3
    labels = np.random.default_rng(1).integers(0, CLASSES, samples)
    np.savez(path, x=x, labels=labels)  # uncompressed: workers read it fast


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB: run on each worker."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(workers: int, data: Path, configs, base, shard_size: int) -> dict:
    started = time.perf_counter()
    with sharding.dask_client(workers=workers) as client:
        client.wait_for_workers(workers)
        ready = time.perf_counter()
        result = sweep.run_sweep([str(CHECKPOINT)], str(data), configs, base, client, "loihi2", shard_size=shard_size)
        memory = client.run(peak_rss_mb)
    total = time.perf_counter() - started
    wall = result.run["graph_wall_s"]
    work = sum(r.stop - r.start for r in result.records)
    per_kind: dict[str, list[float]] = {}
    for r in result.records:
        per_kind.setdefault(r.kind, []).append(r.stop - r.start)
    return {
        "workers": workers, "tasks": result.run["tasks"], "cluster_start_s": ready - started,
        "wall_s": wall, "wall_with_start_s": total, "work_s": work,
        "overhead_share": (workers * wall - work) / work,
        "overhead_per_task_ms": 1e3 * (workers * wall - work) / result.run["tasks"],
        "task_s": {k: {"count": len(v), "mean": float(np.mean(v)), "max": float(np.max(v))} for k, v in per_kind.items()},
        "worker_peak_rss_mb": sorted(memory.values()),
        "rows": sweep_rows(result),
    }


def sweep_rows(result) -> list[dict]:
    return [{k: r.get(k) for k in ("weight_bits", "coefficient_bits", "state_bits", "status", "accuracy_drop_pp",
                                    "prediction_agreement", "energy_uj")} for r in result.rows]


def main() -> None:
    from silif_deploy.deploy.cmd_sweep import bit_list

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--weight-bits", type=bit_list, default=[4, 6, 8])
    p.add_argument("--coefficient-bits", type=bit_list, default=[8, 12, 16])
    p.add_argument("--shard-size", type=int, default=250)
    p.add_argument("--json", type=Path, default=None, help="also write the figures there")
    args = p.parse_args()
    base = load_profile("loihi2")
    configs = sweep.configurations(base, args.weight_bits, args.coefficient_bits, None)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "ssc_like.npz"
        ssc_like(args.samples, data)
        runs = [measure(w, data, configs, base, args.shard_size) for w in (1, 2)]
    one, two = runs
    if sweep_report_rows(one) != sweep_report_rows(two):
        raise SystemExit("the 1- and 2-worker sweeps disagree: results must not depend on the cluster")
    speedup, speedup_start = one["wall_s"] / two["wall_s"], one["wall_with_start_s"] / two["wall_with_start_s"]
    print(f"sweep: {len(configs)} configurations of {CHECKPOINT.name} on {args.samples} SSC-like samples "
          f"(shards of {args.shard_size}; {one['tasks']} tasks); {platform.node()}, shared with other work")
    for r in runs:
        kinds = ", ".join(f"{k} {v['count']} × {v['mean']:.2f} s" for k, v in r["task_s"].items())
        print(f"  {r['workers']} worker(s): wall {r['wall_s']:.2f} s ({r['wall_with_start_s']:.2f} s with the "
              f"cluster's start of {r['cluster_start_s']:.2f} s); work {r['work_s']:.2f} s ({kinds}); overhead "
              f"{100 * r['overhead_share']:.2f} % of the work ({r['overhead_per_task_ms']:.1f} ms per task); "
              f"worker peak RSS {', '.join(f'{m:.0f}' for m in r['worker_peak_rss_mb'])} MB")
    print(f"2-worker speed-up: {speedup:.2f}x on a started cluster, {speedup_start:.2f}x with the start "
          f"(target >= 1.7x); overhead 1 worker {100 * one['overhead_share']:.2f} %, 2 workers "
          f"{100 * two['overhead_share']:.2f} % (target < 5 %)")
    # Why a speed-up falls short: Dask keeping both workers busy (concurrency) vs each task running
    # slower when two run at once (cores shared with other work, memory bandwidth).
    slowdown = two["work_s"] / one["work_s"]
    print(f"  concurrency with 2 workers (work / wall): {two['work_s'] / two['wall_s']:.2f}; "
          f"the same work took {slowdown:.2f}x as long with two tasks at a time as with one")
    if args.json:
        args.json.write_text(json.dumps({"samples": args.samples, "shard_size": args.shard_size, "runs": runs,
                                         "speedup": speedup, "speedup_with_start": speedup_start}, indent=2) + "\n")


def sweep_report_rows(run: dict) -> str:
    return json.dumps(run["rows"], sort_keys=True)


if __name__ == "__main__":
    main()
