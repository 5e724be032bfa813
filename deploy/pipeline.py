"""``export --target loihi2``: checkpoint → NIR → fixed point → artifact → per-layer report.

Steps (inputs are all checked before the first write; the five files are written into a staging
folder and appear together at the end, or none of them, also under SIGTERM and Ctrl-C):

1. load the checkpoint, the hardware profile and the calibration input;
2. extract the float network (BatchNorm folded, discrete coefficients) once, and write
   ``<name>.nir`` from it; with ``check_nir`` (``export --check-nir``) read the file back and
   refuse unless it gives the same float network bit for bit (the round trip is also a test);
3. quantize that same float network: calibrate the state scales on ``--calibrate INPUT`` (max
   |state| of one float pass), else weights-only with the profile's default state range;
4. write ``<name>.loihi2.h5`` with provenance (tool version, checkpoint and NIR SHA-256, profile
   name and text) and the float model it came from;
5. run the artifact read back from disk (fixed point) and the checkpoint's float model on an
   evaluation input (the calibration input, else :class:`SyntheticProbe`), and write
   ``report.json``, ``report.md`` and ``report.png``.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from silif_deploy.converters.artifact import read_artifact, write_artifact
from silif_deploy.converters.datasets import InputSource, open_input
from silif_deploy.converters.files import provenance, sha256_file, staged_outputs
from silif_deploy.converters.float_params import FloatNetwork, float_network
from silif_deploy.deploy import reporting
from silif_deploy.deploy.batching import BATCH_SIZE, batches
from silif_deploy.deploy.engines import ARTIFACT_SUFFIX, is_spiking_ssm, load_float_model, model_name
from silif_deploy.deploy.report_builder import build_report
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.network import FixedPointNetwork
from silif_deploy.hw_models.profile import HardwareProfile, load_profile

REPORT_FILES = ("report.json", "report.md", "report.png")


@dataclass(frozen=True)
class SyntheticProbe:
    """A seeded SSC-like evaluation input, used when no calibration input is given.

    Every (sample, step, channel) bin is non-zero with probability ``activity`` and then holds a
    count drawn uniformly from 1…``max_count``: the statistics of the shared golden SSC inputs
    (6.06 % non-zero bins, counts 1–3, about 2 events per non-zero bin). Reports made from it say
    ``"input": {"kind": "synthetic-probe", ...}``: its SOPs and sparsity describe random input,
    not speech.
    """

    samples: int = 16
    steps: int = 300
    activity: float = 0.06
    max_count: int = 3
    seed: int = 0

    def generate(self, channels: int) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        shape = (self.samples, self.steps, channels)
        active = rng.random(shape) < self.activity
        counts = rng.integers(1, self.max_count + 1, size=shape)
        return np.where(active, counts, 0).astype(np.int16)


@dataclass
class ExportResult:
    """Paths of the five files written, the report, and the wall time of the export."""

    nir: Path
    artifact: Path
    report_json: Path
    report_md: Path
    report_png: Path
    report: dict[str, Any]
    seconds: float


def calibration_ranges(model, source: InputSource, batch_size: int = BATCH_SIZE) -> tuple[list[float], float]:
    """:func:`~silif_deploy.converters.float_params.state_ranges` over ``source`` in one pass (max over batches)."""
    from silif_deploy.converters.float_params import state_ranges

    hidden, readout = None, 0.0
    for xb, _ in batches(source, "calibrating (float)", batch_size):
        h, r = state_ranges(model, xb)
        hidden = h if hidden is None else [max(a, b) for a, b in zip(hidden, h)]
        readout = max(readout, r)
    return hidden, readout  # type: ignore[return-value]


def quantize_model(model, hw: HardwareProfile, x: InputSource | np.ndarray | None = None,
                   netx: bool = False, folded: FloatNetwork | None = None) -> FixedPointNetwork:
    """Quantize a float model under ``hw``; with a calibration input ``x``, from its float state ranges
    (one float pass over ``x``); ``netx`` puts the readout on lava-dl netx's grid
    (:func:`~silif_deploy.converters.quantize.quantize`). ``folded``: the model's float network
    when the caller has extracted it already."""
    from silif_deploy.converters.quantize import quantize

    if is_spiking_ssm(model):
        return quantize_spiking_ssm_model(model, hw, x, netx=netx)
    folded = folded if folded is not None else float_network(model)
    if x is None:
        return quantize(folded, hw, netx=netx)
    source = InputSource.from_array(x) if isinstance(x, np.ndarray) else x
    ranges, readout_range = calibration_ranges(model, source)
    return quantize(folded, hw, state_ranges=ranges, readout_range=readout_range,
                    calibration_input=source.stats, netx=netx)


def quantize_spiking_ssm_model(model, hw: HardwareProfile, x: InputSource | np.ndarray | None = None,
                               netx: bool = False) -> FixedPointNetwork:
    """A SpikingSSM / binary-S4D float model in fixed point
    (:func:`~silif_deploy.converters.families.spiking_ssm_quantize.quantize_spiking_ssm`), its scales
    calibrated on one float64 pass over ``x`` when given."""
    from silif_deploy.converters.families.spiking_ssm import extract_arrays
    from silif_deploy.converters.families.spiking_ssm_quantize import calibrate, quantize_spiking_ssm

    if netx:
        raise SilifDeployError(f"--target netx writes chains of Dense and neuron layers; a {model.config.family} network's "
                               "S4D, GLU and residual stages have no netx form: use --target loihi2")
    arrays = extract_arrays(model)
    if x is None:
        return quantize_spiking_ssm(arrays, hw)
    source = InputSource.from_array(x) if isinstance(x, np.ndarray) else x
    ranges = calibrate(arrays, (xb for xb, _ in batches(source, "calibrating (float)")))
    ranges.stats = source.stats
    return quantize_spiking_ssm(arrays, hw, ranges)


def export_loihi2(
    model_path: str | os.PathLike,
    outdir: str | os.PathLike,
    model_type: str | None = None,
    profile: str | os.PathLike | None = None,
    calibrate: str | os.PathLike | None = None,
    probe: SyntheticProbe | None = None,
    model=None,
    check_nir: bool = False,
) -> ExportResult:
    """Export a checkpoint (or NIR file) to Loihi 2 fixed point and report on it (module docstring).

    ``model``: the float model of ``model_path`` when the caller has loaded it already;
    ``check_nir``: read the NIR file back and refuse unless it gives the same float network.
    """
    from silif_deploy.converters.nir_export import write_nir
    from silif_deploy.converters.nir_import import check_round_trip

    started = time.perf_counter()
    hw = load_profile(profile)
    model = model if model is not None else load_float_model(model_path, model_type=model_type,
                                                             for_fixed_point="export --target loihi2")
    data = open_input(calibrate, n_channels=model.config.n_inputs) if calibrate is not None else None
    out = Path(outdir)
    name = model_name(Path(model_path))
    source_sha256 = sha256_file(model_path)
    files = [f"{name}.nir", f"{name}{ARTIFACT_SUFFIX}", *REPORT_FILES]
    # all five files are written into a staging folder and appear together (or none of them)
    with staged_outputs(out) as stage:
        nir_path, artifact_path, json_path, md_path, png_path = (stage / f for f in files)
        if is_spiking_ssm(model):  # a whole-network family: NIR and the quantizer read the model itself
            from silif_deploy.converters.nir_spiking_ssm import check_round_trip as check_ssm_round_trip

            folded = None
            write_nir(model, nir_path, source_sha256=source_sha256)
            if check_nir:
                check_ssm_round_trip(nir_path, model)
        else:
            folded = float_network(model)  # the one extraction: NIR and the quantizer read it
            write_nir(model, nir_path, source_sha256=source_sha256, folded=folded)
            if check_nir:
                check_round_trip(nir_path, folded)
        network = quantize_model(model, hw, data, folded=folded)
        network.provenance = provenance(
            source_checkpoint=Path(model_path).name, source_sha256=source_sha256,
            nir_sha256=sha256_file(nir_path), model_type=model.config.model_type,
            hardware_profile=hw.name, hardware_profile_text=hw.source_text,
            calibration_sha256=None if data is None else data.source_sha256,
        )
        network.float_model = {"config": model.config.to_dict(),
                               "state_dict": {k: v.numpy() for k, v in model.state_dict().items()}}
        write_artifact(network, artifact_path)

        network = read_artifact(artifact_path)
        if data is not None:
            source, input_info = data, None  # a data file's record (path, hash, counts?)
        else:
            probe = probe or SyntheticProbe()
            source = InputSource.from_array(probe.generate(network.n_inputs))
            input_info = {"kind": "synthetic-probe", "probe": asdict(probe), "is_counts": True}
        built = build_report(network, source, model_source=model_path, float_model=model, input_info=input_info,
                             input_path=calibrate, artifact=artifact_path)
        reporting.write_report(built, json_path, md_path, png_path)
    return ExportResult(*(out / f for f in files), built.report, time.perf_counter() - started)
