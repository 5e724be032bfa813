"""The end-to-end demo behind `make demo`: export, quantize, simulate bit-accurately, report.

For the four small trained models shipped in examples/trained/ on the synthetic spoken digits
(SiLIF and C-SiLIF 2 x 128, SpikingSSM and binary S4D H 72, N 16, 2 blocks: about 38 k parameters
each), then their comparison, and then for the authors' SSC SiLIF checkpoint (2 x 512), it runs the
same commands a user types, printing each one first. Outputs go to out/demo/.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from silif_deploy.deploy.cli import main as cli

EXAMPLES = Path(__file__).resolve().parent
OUT = Path("out/demo")
TEST_SPLIT = EXAMPLES / "trained" / "synth_digits_test.npz"
TRAINED = ("synth_digits_silif_2x128", "synth_digits_csilif_2x128",
           "synth_digits_spiking_ssm_2x72n16", "synth_digits_binary_s4d_2x72n16")
SSC = EXAMPLES / "models" / "ssc_silif_2x512.pth"


def run(*args: object) -> None:
    words = [str(a) for a in args]
    print(f"\n$ silif-deploy {shlex.join(words)}", flush=True)
    status = cli(words)
    if status != 0:
        sys.exit(f"demo: `silif-deploy {shlex.join(words)}` exited with {status}")


def main() -> None:
    start = time.perf_counter()
    for name in TRAINED:
        checkpoint = EXAMPLES / "trained" / f"{name}.pt"
        outdir = OUT / name
        artifact = outdir / f"{name}.loihi2.h5"
        print(f"\n=== {name}: export to Loihi 2 fixed point, simulate the test split, report ===")
        run("export", checkpoint, "--target", "loihi2", "-o", outdir)
        run("verify", checkpoint, "--data", TEST_SPLIT, "--max-accuracy-drop", "1.0")
        run("report", artifact, "--input", TEST_SPLIT, "-o", outdir / "test_split_report")
    print("\n=== the four families side by side: accuracy, SOPs, graded MACs, energy, Pareto plot ===")
    run("compare", *(OUT / name / f"{name}.loihi2.h5" for name in TRAINED), "--input", TEST_SPLIT, "-o", OUT / "compare")
    print("\n=== the authors' SSC SiLIF checkpoint (2 x 512): the same pipeline ===")
    run("export", SSC, "--target", "loihi2", "-o", OUT / SSC.stem)
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; reports and plots are under {OUT}/")


if __name__ == "__main__":
    main()
