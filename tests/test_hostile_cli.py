"""A catalogue of hostile command lines: every one must exit 2 with exactly one stderr line and no
traceback, write nothing, and leave every input byte for byte as it was.

The cases run in-process through ``cli.main(argv)`` (a subprocess would pay torch's import, ~2 s,
per case); the signal cases, which need a real process, are in ``test_interrupts.py``. The
workspace is one tiny network (10 inputs, 2 × 8 SiLIF neurons, 4 classes) as a checkpoint, its
NIR file and artifact, a counts input, a labelled input, an SHD-layout file and a golden. Each
case names a command line with placeholders for those files and, where it needs one, a builder
for the hostile file ``{BAD}`` it reads (written into the case's own folder).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from silif_deploy.converters.checkpoint import save_checkpoint  # noqa: E402
from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402
from silif_deploy.hw_models.energy_profile import ENERGY_PROFILE_DIR, DEFAULT_ENERGY_PROFILE  # noqa: E402
from silif_deploy.hw_models.profile import PROFILE_DIR  # noqa: E402

N_IN, HIDDEN, N_CLASSES, STEPS, SAMPLES = 10, [8, 8], 4, 12, 3


def write_shd(path: Path, times: list, units: list, labels, time_dtype=np.float32) -> Path:
    """An SHD-layout file (spikes/times, spikes/units as ragged rows, labels)."""
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(time_dtype))
        u = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (ti, ui) in enumerate(zip(times, units)):
            t[i] = np.asarray(ti, time_dtype)
            u[i] = np.asarray(ui, np.uint16)
        f.create_dataset("labels", data=labels)
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> dict[str, Path]:
    """The valid files every case starts from."""
    d = tmp_path_factory.mktemp("hostile")
    torch.manual_seed(3)
    model = SpikingNetwork(NetworkConfig("silif", N_IN, HIDDEN, N_CLASSES, pdrop=0.0)).eval()
    save_checkpoint(model, d / "m.pt")
    assert main(["export", str(d / "m.pt"), "--target", "loihi2", "-o", str(d / "exp")]) == 0
    x = np.random.default_rng(0).poisson(0.5, (SAMPLES, STEPS, N_IN)).astype(np.int16)
    np.save(d / "x.npy", x)
    np.savez(d / "xl.npz", input=x, labels=np.array([0, 1, 3]))
    assert main(["golden", str(d / "exp" / "m.loihi2.h5"), "--input", str(d / "x.npy"), "-o", str(d / "g.npz")]) == 0
    rng = np.random.default_rng(1)
    write_shd(d / "d.h5", [np.sort(rng.uniform(0, 0.9, 30)) for _ in range(6)],
              [rng.integers(0, 700, 30) for _ in range(6)], np.array([0, 1, 2, 0, 1, 2], np.uint8))
    return {"CKPT": d / "m.pt", "NIR": d / "exp" / "m.nir", "ART": d / "exp" / "m.loihi2.h5", "X": d / "x.npy",
            "XL": d / "xl.npz", "GOLD": d / "g.npz", "D": d / "d.h5", "ROOT": d}


# --- builders of hostile files: (case folder, workspace) -> path ------------------------------------------

Builder = Callable[[Path, dict], Path]


def raw(data: bytes, name: str) -> Builder:
    def build(tmp: Path, ws: dict) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name
    return build


def truncated(key: str, keep: float, name: str) -> Builder:
    def build(tmp: Path, ws: dict) -> Path:
        data = ws[key].read_bytes()
        (tmp / name).write_bytes(data[: int(len(data) * keep)])
        return tmp / name
    return build


def npy(array_fn: Callable[[], np.ndarray], name: str = "bad.npy") -> Builder:
    def build(tmp: Path, ws: dict) -> Path:
        with open(tmp / name, "wb") as fh:  # np.save(path) would append .npy to other names
            np.save(fh, array_fn(), allow_pickle=True)
        return tmp / name
    return build


def npz(name: str = "bad.npz", **arrays: Callable[[], np.ndarray]) -> Builder:
    def build(tmp: Path, ws: dict) -> Path:
        np.savez(tmp / name, **{k: f() for k, f in arrays.items()})
        return tmp / name
    return build


def counts() -> np.ndarray:
    return np.random.default_rng(0).poisson(0.5, (SAMPLES, STEPS, N_IN)).astype(np.int16)


def with_value(value, dtype=np.float64, where=(0, 0, 0)) -> Callable[[], np.ndarray]:
    def make() -> np.ndarray:
        x = counts().astype(dtype)
        x[where] = value
        return x
    return make


def artifact(edit: Callable[[h5py.File], None], name: str = "bad.loihi2.h5") -> Builder:
    """A copy of the artifact with an h5py edit."""
    def build(tmp: Path, ws: dict) -> Path:
        shutil.copy(ws["ART"], tmp / name)
        with h5py.File(tmp / name, "r+") as f:
            edit(f)
        return tmp / name
    return build


def set_attr(group: str, key: str, value) -> Callable[[h5py.File], None]:
    return lambda f: f[group].attrs.__setitem__(key, value)


def set_data(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        new = fn(f[name][()])
        del f[name]
        f.create_dataset(name, data=new)
    return edit


def set_one(name: str, value, index=0) -> Callable[[h5py.File], None]:
    def change(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.int64 if isinstance(value, int) else np.float64)
        a.reshape(-1)[index] = value
        return a
    return set_data(name, change)


def profile_text(edit: Callable[[str], str]) -> Callable[[h5py.File], None]:
    def change(f: h5py.File) -> None:
        f["profile"].attrs["text"] = edit(str(f["profile"].attrs["text"]))
    return change


def toml(old: str, new: str, base: Path = PROFILE_DIR / "loihi2.toml", name: str = "bad.toml") -> Builder:
    def build(tmp: Path, ws: dict) -> Path:
        text = base.read_text()
        assert old in text, old
        (tmp / name).write_text(text.replace(old, new, 1))
        return tmp / name
    return build


def energy_toml(old: str, new: str) -> Builder:
    return toml(old, new, ENERGY_PROFILE_DIR / f"{DEFAULT_ENERGY_PROFILE}.toml")


def golden(**edit) -> Builder:
    """A copy of the golden with members replaced (a callable of the old value) or removed (None)."""
    def build(tmp: Path, ws: dict) -> Path:
        with np.load(ws["GOLD"]) as z:
            arrays = {k: z[k] for k in z.files}
        for key, fn in edit.items():
            if fn is None:
                del arrays[key]
            else:
                arrays[key] = fn(arrays[key])
        np.savez(tmp / "bad.npz", **arrays)
        return tmp / "bad.npz"
    return build


def shd(times=None, units=None, labels=None, time_dtype=np.float32) -> Builder:
    def build(tmp: Path, ws: dict) -> Path:
        t = times or [np.array([0.1, 0.2]), np.array([0.3])]
        u = units or [np.array([1, 2]), np.array([3])]
        return write_shd(tmp / "bad.h5", t, u, np.array([0, 1]) if labels is None else labels, time_dtype)
    return build


def fifo(name: str) -> Builder:
    def build(tmp: Path, ws: dict) -> Path:
        os.mkfifo(tmp / name)
        return tmp / name
    return build


def folder(name: str) -> Builder:
    def build(tmp: Path, ws: dict) -> Path:
        (tmp / name).mkdir()
        return tmp / name
    return build


def checkpoint(payload_fn: Callable[[], object], name: str = "bad.pt") -> Builder:
    def build(tmp: Path, ws: dict) -> Path:
        torch.save(payload_fn(), tmp / name)
        return tmp / name
    return build


def linked(key: str, name: str, hard: bool) -> Builder:
    def build(tmp: Path, ws: dict) -> Path:
        (os.link if hard else os.symlink)(ws[key], tmp / name)
        return tmp / name
    return build


def nir_edit(edit: Callable[[h5py.File], None]) -> Builder:
    def build(tmp: Path, ws: dict) -> Path:
        shutil.copy(ws["NIR"], tmp / "bad.nir")
        with h5py.File(tmp / "bad.nir", "r+") as f:
            edit(f)
        return tmp / "bad.nir"
    return build


def lif_compat_nir(tmp: Path, ws: dict) -> Path:
    assert main(["export", str(ws["CKPT"]), "--target", "nir", "--nir-profile", "lif-compat", "-o", str(tmp)]) == 0
    return tmp / "m.lif-compat.nir"


class _Payload:
    """A pickle that would run code when unpickled without weights_only."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def ckpt_config(**config) -> Builder:
    def build(tmp: Path, ws: dict) -> Path:
        obj = torch.load(ws["CKPT"], weights_only=True)
        obj["config"] = {**obj["config"], **config}
        torch.save(obj, tmp / "bad.pt")
        return tmp / "bad.pt"
    return build


def ckpt_tensor(key: str, value: float) -> Builder:
    def build(tmp: Path, ws: dict) -> Path:
        obj = torch.load(ws["CKPT"], weights_only=True)
        obj["state_dict"][key] = obj["state_dict"][key].clone().fill_(value)
        torch.save(obj, tmp / "bad.pt")
        return tmp / "bad.pt"
    return build


@dataclass
class Case:
    id: str
    argv: str
    bad: Builder | None = None


SIM = "simulate {ART} --input {X} --out {OUT}"
SIM_BAD_ART = "simulate {BAD} --input {X} --out {OUT}"
SIM_BAD_IN = "simulate {ART} --input {BAD} --out {OUT}"
EXPORT_PROFILE = "export {CKPT} --target loihi2 -o {OUTDIR} --profile {BAD}"

CASES: list[Case] = [
    # 1. an output over an input
    Case("sim-out-is-artifact", "simulate {ART} --input {X} --out {ART}"),
    Case("sim-out-is-input", "simulate {ART} --input {X} --out {X}"),
    Case("sim-out-is-checkpoint", "simulate {CKPT} --input {X} --out {CKPT}"),
    Case("sim-out-is-nir", "simulate {NIR} --input {X} --out {NIR}"),
    Case("sim-report-is-artifact", "simulate {ART} --input {X} --out {OUT} --report {ART}"),
    Case("sim-report-is-out", "simulate {ART} --input {X} --out {OUT} --report {OUT}"),
    Case("sim-out-dotdot-artifact", "simulate {ART} --input {X} --out {ARTDIR}/../exp/m.loihi2.h5"),
    Case("sim-out-hardlink-to-artifact", "simulate {ART} --input {X} --out {BAD}", linked("ART", "h.npz", True)),
    Case("sim-out-symlink-to-input", "simulate {ART} --input {X} --out {BAD}", linked("X", "s.npz", False)),
    Case("golden-out-is-artifact", "golden {ART} --input {X} -o {ART}"),
    Case("golden-out-is-input", "golden {ART} --input {XL} -o {XL}"),
    Case("golden-out-hardlink-to-input", "golden {ART} --input {X} -o {BAD}", linked("X", "h.npz", True)),
    Case("train-out-is-data", "train --data {D} -o {D}"),
    Case("export-nir-into-its-folder", "export {NIR} --target loihi2 -o {ARTDIR}"),
    Case("export-nir-target-nir-into-its-folder", "export {NIR} --target nir -o {ARTDIR}"),
    Case("export-artifact-into-its-folder", "export {ART} --target loihi2 -o {ARTDIR}"),
    # 2. and 7. CLI numbers
    *[Case(f"sim-batch-size-{v}", SIM + f" --batch-size {v}") for v in ("-1", "0", "abc", "1.5", "nan")],
    *[Case(f"train-{opt}-{v}", f"train --data {{D}} -o {{OUT}}.pt --{opt} {v}") for opt, v in [
        ("batch-size", "0"), ("batch-size", "-3"), ("lr", "nan"), ("lr", "inf"), ("lr", "0"), ("lr", "-1"),
        ("lr", "abc"), ("epochs", "0"), ("hidden", "0"), ("layers", "0"), ("pdrop", "1.0"), ("pdrop", "-0.1"),
        ("pdrop", "nan"), ("factor", "0"), ("factor", "1"), ("nb-steps", "1"), ("max-time", "0"),
        ("max-time", "nan"), ("valid-fraction", "1"), ("threads", "0"), ("patience", "0"), ("seed", "-1")]],
    *[Case(f"verify-budget-{v}", f"verify {{ART}} --data {{XL}} --max-accuracy-drop={v}") for v in ("nan", "inf", "-inf", "abc", "-1", "-0.5")],
    *[Case(f"make-data-{opt}-{v}", f"make-data --out {{OUTDIR}} --{opt} {v}") for opt, v in [
        ("speakers", "1"), ("repetitions", "0"), ("processes", "0"), ("speakers", "x")]],
    # 3. labels for verify --data and train
    *[Case(f"verify-labels-{name}", "verify {ART} --data {BAD}", npz(input=counts, labels=fn)) for name, fn in [
        ("99", lambda: np.array([0, 1, 99])), ("minus-1", lambda: np.array([0, -1, 2])),
        ("1000", lambda: np.array([1000, 1, 2])), ("fractional", lambda: np.array([0.0, 1.5, 2.0])),
        ("strings", lambda: np.array(["a", "b", "c"])), ("nan", lambda: np.array([0.0, np.nan, 1.0])),
        ("2d", lambda: np.zeros((3, 2), int)), ("too-few", lambda: np.array([0, 1])),
        ("bool", lambda: np.array([True, False, True])), ("objects", lambda: np.array([0, "a", None], dtype=object))]],
    Case("verify-data-without-labels", "verify {ART} --data {X}"),
    Case("train-labels-negative", "train --data {BAD} -o {OUT}.pt", shd(labels=np.array([0, -1], np.int64))),
    Case("train-labels-strings", "train --data {BAD} -o {OUT}.pt", shd(labels=np.array([b"a", b"b"]))),
    Case("train-one-sample", "train --data {BAD} -o {OUT}.pt",
         shd(times=[np.array([0.1])], units=[np.array([1])], labels=np.array([0]))),
    # golden files
    Case("golden-zero-bytes", "verify {ART} --golden {BAD}", raw(b"", "bad.npz")),
    Case("golden-truncated", "verify {ART} --golden {BAD}", truncated("GOLD", 0.5, "bad.npz")),
    Case("golden-random-bytes", "verify {ART} --golden {BAD}", raw(os.urandom(2000), "bad.npz")),
    Case("golden-is-npy", "verify {ART} --golden {BAD}", npy(counts, "bad.npz")),
    Case("golden-missing", "verify {ART} --golden {ROOT}/nope.npz"),
    Case("golden-directory", "verify {ART} --golden {BAD}", folder("g.npz")),
    Case("golden-fifo", "verify {ART} --golden {BAD}", fifo("g.npz")),
    Case("golden-no-spikes", "verify {ART} --golden {BAD}", golden(spikes_0=None)),
    Case("golden-no-identity", "verify {ART} --golden {BAD}", golden(artifact_identity=None)),
    Case("golden-no-digests", "verify {ART} --golden {BAD}", golden(state_digests_1=None)),
    Case("golden-digests-shape", "verify {ART} --golden {BAD}", golden(neuron_digests_0=lambda a: a[:, :-1])),
    Case("golden-spikes-dtype", "verify {ART} --golden {BAD}", golden(spikes_1=lambda a: a.astype(np.int64))),
    Case("golden-spikes-shape", "verify {ART} --golden {BAD}", golden(spikes_0=lambda a: a[:, :-1])),
    Case("golden-readout-float", "verify {ART} --golden {BAD}", golden(readout_v=lambda a: a.astype(float))),
    Case("golden-version-text", "verify {ART} --golden {BAD}", golden(format_version=lambda a: np.array("2"))),
    Case("golden-version-99", "verify {ART} --golden {BAD}", golden(format_version=lambda a: np.array(99))),
    Case("golden-version-0", "verify {ART} --golden {BAD}", golden(format_version=lambda a: np.array(0))),
    Case("golden-wrong-format", "verify {ART} --golden {BAD}", golden(format=lambda a: np.array("other"))),
    Case("golden-input-nan", "verify {ART} --golden {BAD}", golden(input=lambda a: np.where(a > 0, np.nan, 0.0))),
    Case("golden-input-2d", "verify {ART} --golden {BAD}", golden(input=lambda a: a[0])),
    Case("golden-no-samples", "verify {ART} --golden {BAD}", golden(input=lambda a: a[:0])),
    Case("golden-n-neurons-text", "verify {ART} --golden {BAD}", golden(n_neurons=lambda a: np.array(["8", "8"]))),
    Case("golden-with-both-checks", "verify {ART} --golden {GOLD} --data {XL}"),
    Case("artifact-readout-rows-cut", "verify {BAD} --golden {GOLD}",
         artifact(set_data("layers/2/weights", lambda w: w[:3]))),
    # 5. artifact values
    *[Case(f"artifact-{name}", SIM_BAD_ART, artifact(edit)) for name, edit in [
        ("weight-1000", set_one("layers/0/weights", 1000)),
        ("weight-odd", set_one("layers/0/weights", 3)),
        ("weight-2e40", set_one("layers/1/weights", 2**40)),
        ("weight-float", set_data("layers/0/weights", lambda w: w.astype(np.float64) + 0.5)),
        ("weight-exp-100", set_attr("layers/0", "weight_exp", 100)),
        ("weight-exp-minus-100", set_attr("layers/1", "weight_exp", -100)),
        ("weight-bits-64", set_attr("layers/0", "num_weight_bits", 64)),
        ("weight-bits-0", set_attr("layers/2", "num_weight_bits", 0)),
        ("threshold-0", set_attr("layers/0", "threshold", 0)),
        ("threshold-negative", set_attr("layers/1", "threshold", -64)),
        ("threshold-float", set_attr("layers/0", "threshold", 64.5)),
        ("threshold-2e62", set_attr("layers/0", "threshold", 2**62)),
        ("input-shift-100", set_attr("layers/0", "input_shift", 100)),
        ("input-shift-minus-1", set_attr("layers/1", "input_shift", -1)),
        ("frac-bits-200", set_attr("layers/0", "frac_bits", 200)),
        ("frac-bits-0", set_attr("layers/1", "frac_bits", 0)),
        ("half-wrong", set_attr("layers/0", "half", 12345)),
        ("u-mode-5", set_attr("layers/0", "u_mode", 5)),
        ("w-mode-wrap", set_attr("layers/1", "w_mode", 0)),
        ("alpha-2e62", set_one("layers/0/alpha", 2**62)),
        ("gain-minus-5000", set_one("layers/1/gain", -5000)),
        ("beta-2e13", set_one("layers/0/beta", 2**13)),
        ("a-2e62", set_one("layers/0/a", 2**62)),
        ("b-spike-2e40", set_one("layers/1/b_spike", 2**40)),
        ("bias-2e62", set_one("layers/0/bias", 2**62)),
        ("bias-float", set_data("layers/0/bias", lambda b: b + 0.5)),
        ("param-shape", set_data("layers/0/alpha", lambda a: a[:-1])),
        ("zero-neurons", lambda f: [set_data(f"layers/0/{k}", lambda a: a[:0])(f) for k in f["layers/0"]]),
        ("readout-du-5000", set_one("layers/2/du", 5000)),
        ("readout-dv-negative", set_one("layers/2/dv", -1)),
        ("readout-bias-exp-100", set_one("layers/2/bias_exp", 100)),
        ("readout-bias-exp-negative", set_one("layers/2/bias_exp", -3)),
        ("readout-bias-mant-2e40", set_one("layers/2/bias_mant", 2**40)),
        ("readout-vth-negative", set_attr("layers/2", "vth", -1)),
        ("readout-vth-2e30", set_attr("layers/2", "vth", 2**30)),
        ("readout-threshold-exponent-70", set_attr("layers/2", "threshold_exponent", 70)),
        ("readout-kind-silif", set_attr("layers/2", "kind", "silif")),
        ("hidden-kind-cuba", set_attr("layers/0", "kind", "cuba")),
        ("kind-unknown", set_attr("layers/1", "kind", "izhikevich")),
        ("scale-0", set_attr("layers/2", "scale", 0)),
        ("n-inputs-0", set_attr("/", "n_inputs", 0)),
        ("input-frac-bits-100", set_attr("/", "input_frac_bits", 100)),
        ("format-version-99", set_attr("/", "format_version", 99)),
        ("format-version-text", set_attr("/", "format_version", "1")),
        ("format-missing", lambda f: f.attrs.__delitem__("format")),
        ("layers-missing", lambda f: f.__delitem__("layers")),
        ("readout-missing", lambda f: f.__delitem__("layers/2")),
        ("weights-missing", lambda f: f.__delitem__("layers/1/weights")),
        ("profile-missing", lambda f: f.__delitem__("profile")),
        ("profile-message-bits-64", profile_text(lambda t: t.replace("input_message_bits = 8", "input_message_bits = 64"))),
        ("profile-message-bits-0", profile_text(lambda t: t.replace("input_message_bits = 8", "input_message_bits = 0"))),
        ("profile-garbage", profile_text(lambda t: "[[[ not toml")),
        ("profile-coefficients-8", profile_text(lambda t: t.replace("bits = 12", "bits = 8"))),
        ("provenance-not-json", set_attr("/", "provenance", "{oops")),
    ]],
    Case("artifact-zero-bytes", SIM_BAD_ART, raw(b"", "bad.loihi2.h5")),
    Case("artifact-random-bytes", SIM_BAD_ART, raw(os.urandom(4096), "bad.loihi2.h5")),
    Case("artifact-truncated", SIM_BAD_ART, truncated("ART", 0.5, "bad.loihi2.h5")),
    Case("artifact-is-nir", SIM_BAD_ART, lambda tmp, ws: Path(shutil.copy(ws["NIR"], tmp / "bad.loihi2.h5"))),
    Case("artifact-fifo", SIM_BAD_ART, fifo("bad.loihi2.h5")),
    Case("artifact-directory", SIM_BAD_ART, folder("bad.loihi2.h5")),
    Case("artifact-missing", "simulate {ROOT}/nope.loihi2.h5 --input {X} --out {OUT}"),
    Case("inspect-weight-odd", "inspect {BAD}", artifact(set_one("layers/0/weights", 3))),
    Case("golden-of-bad-artifact", "golden {BAD} --input {X} -o {OUT}", artifact(set_attr("layers/0", "threshold", 0))),
    Case("verify-bad-artifact", "verify {BAD} --golden {GOLD}", artifact(set_attr("layers/0", "weight_exp", 99))),
    Case("report-bad-artifact", "report {BAD} --input {X} -o {OUTDIR}", artifact(set_one("layers/2/du", -7))),
    Case("compare-bad-artifact", "compare {BAD} --input {X}", artifact(set_one("layers/1/bias", 2**50))),
    Case("verify-data-bad-artifact", "verify {BAD} --data {XL}", artifact(set_attr("layers/1", "frac_bits", 40))),
    # 7. and 9. inputs
    *[Case(f"input-{name}", SIM_BAD_IN, build) for name, build in [
        ("zero-bytes-npy", raw(b"", "bad.npy")),
        ("zero-bytes-npz", raw(b"", "bad.npz")),
        ("zero-bytes-h5", raw(b"", "bad.h5")),
        ("truncated-npy", truncated("X", 0.5, "bad.npy")),
        ("truncated-npz", truncated("XL", 0.6, "bad.npz")),
        ("truncated-h5", truncated("D", 0.5, "bad.h5")),
        ("random-bytes-h5", raw(os.urandom(3000), "bad.h5")),
        ("random-bytes-npz", raw(b"PK\x03\x04" + os.urandom(500), "bad.npz")),
        ("object-npy", npy(lambda: np.array([[[None]]], dtype=object))),
        ("strings-npy", npy(lambda: np.full((1, 2, N_IN), "a"))),
        ("complex-npy", npy(lambda: counts().astype(np.complex64))),
        ("2d", npy(lambda: counts()[0])),
        ("4d", npy(lambda: counts()[None])),
        ("no-samples", npy(lambda: counts()[:0])),
        ("no-steps", npy(lambda: counts()[:, :0])),
        ("nan", npy(with_value(np.nan))),
        ("inf", npy(with_value(np.inf))),
        ("minus-inf-float16", npy(with_value(-np.inf, np.float16))),
        ("float64-max", npy(with_value(np.finfo(np.float64).max))),
        ("1e39", npy(with_value(1e39))),
        ("counts-1e30", npy(with_value(1e30))),
        ("counts-300", npy(with_value(300, np.int32))),
        ("counts-negative", npy(with_value(-1, np.int32))),
        ("counts-fractional", npy(with_value(0.5))),
        ("wrong-channels", npy(lambda: counts()[:, :, :5])),
        ("npz-without-x", npz(labels=lambda: np.array([0, 1, 2]))),
        ("npz-labels-count", npz(input=counts, labels=lambda: np.array([0, 1]))),
        ("npz-labels-strings", npz(input=counts, labels=lambda: np.array(["a", "b", "c"]))),
        ("npz-object-input", npz(input=lambda: np.array([[[None]]], dtype=object))),
        ("fifo-npy", fifo("bad.npy")),
        ("fifo-h5", fifo("bad.h5")),
        ("directory", folder("bad.npy")),
        ("unknown-suffix", raw(b"1,2,3\n", "bad.csv")),
        ("h5-not-shd", artifact(lambda f: None, "bad.h5")),
        ("shd-nan-times", shd(times=[np.array([0.1, np.nan]), np.array([0.3])])),
        ("shd-negative-times", shd(times=[np.array([-0.1, 0.2]), np.array([0.3])])),
        ("shd-unit-700", shd(units=[np.array([1, 700]), np.array([3])])),
        ("shd-ragged-mismatch", shd(units=[np.array([1]), np.array([3])])),
        ("shd-labels-count", shd(labels=np.array([0, 1, 2]))),
        ("shd-labels-float", shd(labels=np.array([0.5, 1.0]))),
    ]],
    Case("input-missing", "simulate {ART} --input {ROOT}/nope.npy --out {OUT}"),
    Case("float-engine-no-steps", "simulate {CKPT} --input {BAD} --out {OUT}", npy(lambda: counts()[:, :0])),
    Case("float-engine-no-samples", "simulate {CKPT} --input {BAD} --out {OUT}", npy(lambda: counts()[:0])),
    Case("export-calibrate-nan", "export {CKPT} --target loihi2 -o {OUTDIR} --calibrate {BAD}", npy(with_value(np.nan))),
    Case("golden-input-inf", "golden {ART} --input {BAD} -o {OUT}", npy(with_value(np.inf))),
    Case("report-input-no-samples", "report {ART} --input {BAD} -o {OUTDIR}", npy(lambda: counts()[:0])),
    Case("compare-input-strings", "compare {ART} --input {BAD}", npy(lambda: np.full((1, 2, N_IN), "a"))),
    # outputs that cannot be written
    Case("out-is-directory", "simulate {ART} --input {X} --out {BAD}", folder("out.npz")),
    Case("out-under-a-file", "simulate {ART} --input {X} --out {X}/out.npz"),
    Case("golden-out-is-directory", "golden {ART} --input {X} -o {BAD}", folder("g.npz")),
    Case("export-outdir-is-a-file", "export {CKPT} --target loihi2 -o {X}"),
    Case("report-outdir-is-a-file", "report {ART} --input {X} -o {X}"),
    Case("report-json-is-a-directory", "report {ART} --input {X} -o {BAD}",
         lambda tmp, ws: (tmp / "r" / "report.json").mkdir(parents=True) or tmp / "r"),
    # 8. hardware profiles
    *[Case(f"profile-{name}", EXPORT_PROFILE, toml(old, new)) for name, old, new in [
        ("message-bits-0", "input_message_bits = 8", "input_message_bits = 0"),
        ("message-bits-64", "input_message_bits = 8", "input_message_bits = 64"),
        ("bias-mantissa-100", "mantissa_bits = 13", "mantissa_bits = 100"),
        ("exponent-min-above-max", "exponent_min = -8", "exponent_min = 9"),
        ("weight-bits-1", "bits = 8\n", "bits = 1\n"),
        ("weight-bits-32", "bits = 8\n", "bits = 32\n"),
        ("weight-bits-float", "bits = 8\n", "bits = 8.5\n"),
        ("weight-bits-bool", "bits = 8\n", "bits = true\n"),
        ("state-bits-64", "bits = 24 ", "bits = 64 "),
        ("coefficient-bits-0", "bits = 12\n", "bits = 0\n"),
        ("threshold-mantissa-0", "mantissa_bits = 17", "mantissa_bits = 0"),
        ("threshold-wider-than-state", "mantissa_bits = 17", "mantissa_bits = 30"),
        ("threshold-exponent-100", "exponent = 6", "exponent = 100"),
        ("input-shift-100", "input_shift = 6", "input_shift = 100"),
        ("default-range-0", "default_state_range = 64", "default_state_range = 0"),
        ("default-range-nan", "default_state_range = 64", "default_state_range = nan"),
        ("headroom-half", "headroom = 2.0", "headroom = 0.5"),
        ("overflow-explode", 'membrane_overflow = "saturate"', 'membrane_overflow = "explode"'),
        ("missing-section", "[bias]\nmantissa_bits = 13\nexponent_max = 7\n", ""),
        ("name-empty", 'name = "loihi2"', 'name = ""'),
        ("not-toml", "[weights]", "[weights"),
    ]],
    Case("profile-random-bytes", EXPORT_PROFILE, raw(bytes(range(256)) * 4, "bad.toml")),
    Case("profile-empty", EXPORT_PROFILE, raw(b"", "bad.toml")),
    Case("profile-unknown-name", "export {CKPT} --target loihi2 -o {OUTDIR} --profile nope"),
    Case("profile-for-verify-checkpoint", "verify {CKPT} --data {XL} --profile {BAD}",
         toml("input_message_bits = 8", "input_message_bits = 0")),
    Case("profile-with-artifact", "verify {ART} --data {XL} --profile loihi2"),
    *[Case(f"energy-profile-{name}", "report {ART} --input {X} -o {OUTDIR} --energy-profile {BAD}", build) for name, build in [
        ("neurons-per-core-0", energy_toml("[constants.neurons_per_core]\nvalue = 8192", "[constants.neurons_per_core]\nvalue = 0")),
        ("random-bytes", raw(os.urandom(300) + b"\xff", "bad.toml")),
        ("not-toml", raw(b"[constants\n", "bad.toml")),
        ("empty", raw(b"", "bad.toml")),
    ]],
    # checkpoints
    Case("checkpoint-zero-bytes", "export {BAD} --target nir -o {OUTDIR}", raw(b"", "bad.pt")),
    Case("checkpoint-random-bytes", "export {BAD} --target nir -o {OUTDIR}", raw(os.urandom(1000), "bad.pt")),
    Case("checkpoint-truncated", "export {BAD} --target nir -o {OUTDIR}", truncated("CKPT", 0.5, "bad.pt")),
    Case("checkpoint-pickle-payload", "export {BAD} --target nir -o {OUTDIR}",
         raw(pickle.dumps({"snn.0.W": _Payload()}), "bad.pt")),
    Case("checkpoint-not-a-state-dict", "export {BAD} --target nir -o {OUTDIR}", checkpoint(lambda: {"a": torch.zeros(2)})),
    Case("checkpoint-a-tensor", "export {BAD} --target nir -o {OUTDIR}", checkpoint(lambda: torch.zeros(3))),
    Case("checkpoint-nan-weights", "export {BAD} --target loihi2 -o {OUTDIR}", ckpt_tensor("snn.0.W.weight", float("nan"))),
    Case("checkpoint-zero-hidden", "export {BAD} --target nir -o {OUTDIR}", ckpt_config(hidden_sizes=[0, 8])),
    Case("checkpoint-bad-model-type", "export {BAD} --target nir -o {OUTDIR}", ckpt_config(model_type="izhikevich")),
    Case("checkpoint-fifo", "export {BAD} --target nir -o {OUTDIR}", fifo("bad.pt")),
    Case("checkpoint-directory", "export {BAD} --target nir -o {OUTDIR}", folder("bad.pt")),
    Case("checkpoint-unknown-suffix", "export {BAD} --target nir -o {OUTDIR}", raw(b"x", "bad.onnx")),
    Case("checkpoint-wrong-model-type", "export {CKPT} --target nir -o {OUTDIR} --model-type csilif"),
    # NIR files
    Case("nir-zero-bytes", "simulate {BAD} --input {X} --out {OUT}", raw(b"", "bad.nir")),
    Case("nir-random-bytes", "simulate {BAD} --input {X} --out {OUT}", raw(os.urandom(2000), "bad.nir")),
    Case("nir-truncated", "export {BAD} --target loihi2 -o {OUTDIR}", truncated("NIR", 0.5, "bad.nir")),
    Case("nir-is-artifact", "export {BAD} --target loihi2 -o {OUTDIR}",
         lambda tmp, ws: Path(shutil.copy(ws["ART"], tmp / "bad.nir"))),
    Case("nir-tau-edited", "simulate {BAD} --input {X} --out {OUT}",
         nir_edit(set_data("node/nodes/n2_silif0/nodes/n3_u/tau", lambda t: t * 1.01))),
    Case("nir-tau-zero", "simulate {BAD} --input {X} --out {OUT}",
         nir_edit(set_data("node/nodes/n2_silif0/nodes/n3_u/tau", lambda t: t * 0))),
    Case("nir-bn-eps-text", "export {BAD} --target nir -o {OUTDIR}",
         nir_edit(lambda f: (f.__delitem__("node/nodes/n1_affine0/metadata/bn_eps"),
                             f.create_dataset("node/nodes/n1_affine0/metadata/bn_eps", data="x")))),
    Case("nir-node-deleted", "simulate {BAD} --input {X} --out {OUT}", nir_edit(lambda f: f.__delitem__("node/nodes/n3_affine1"))),
    Case("nir-unknown-node-type", "simulate {BAD} --input {X} --out {OUT}",
         nir_edit(lambda f: (f.__delitem__("node/nodes/input/type"),
                             f.create_dataset("node/nodes/input/type", data="Teleporter")))),
    Case("nir-fifo", "simulate {BAD} --input {X} --out {OUT}", fifo("bad.nir")),
    Case("nir-lif-compat-with-report", "simulate {BAD} --input {X} --out {OUT} --report {OUT}.json", lif_compat_nir),
    # command lines
    Case("unknown-command", "deploy {ART}"),
    Case("missing-input-option", "simulate {ART} --out {OUT}"),
    Case("unknown-option", SIM + " --turbo"),
    Case("unknown-engine", SIM + " --engine gpu"),
    Case("fixed-engine-on-checkpoint", "simulate {CKPT} --input {X} --out {OUT} --engine fixed"),
    Case("unknown-target", "export {CKPT} --target tpu -o {OUTDIR}"),
    Case("verify-without-check", "verify {ART}"),
    Case("unknown-model-type", "simulate {CKPT} --input {X} --out {OUT} --model-type izhikevich"),
    Case("unknown-binning", "golden {ART} --input {D} --binning fast -o {OUT}"),
    Case("bad-source-date-epoch", "export {CKPT} --target nir -o {OUTDIR}"),
]


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file and folder under ``roots``: a SHA-256 per file, 'dir' per folder, 'fifo' per pipe."""
    seen = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_symlink() or path.is_fifo():
                seen[str(path)] = "special"
            elif path.is_dir():
                seen[str(path)] = "dir"
            else:
                seen[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


def test_catalogue_is_large_and_unique():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.timeout(60)
# a warning would be a second stderr line; but not those Python hides by default (numpy leaves a
# file open when np.load fails on a damaged .npz: a ResourceWarning)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_command_exits_2_with_one_line(case: Case, ws, tmp_path, capfd, monkeypatch):
    if case.id == "bad-source-date-epoch":
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    bad = case.bad(case_dir, ws) if case.bad else None
    names = {k: str(v) for k, v in ws.items()}
    argv = case.argv.format(**names, ARTDIR=ws["ART"].parent, BAD=bad, OUT=tmp_path / "out.npz",
                            OUTDIR=tmp_path / "outdir").split()
    before = snapshot(ws["ROOT"], tmp_path)
    capfd.readouterr()
    code = main(argv)
    out, err = capfd.readouterr()
    assert code == 2, f"exit {code}; stdout: {out[-500:]}; stderr: {err[-500:]}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err + out and "error" in lines[0]
    assert snapshot(ws["ROOT"], tmp_path) == before, "a refused command wrote or changed a file"
    if os.environ.get("HOSTILE_SHOW"):
        print(f"\n{case.id}: {lines[0]}")


def test_junk_npz_is_named_no_zip_archive(ws, tmp_path, capfd):
    """numpy takes bytes that are neither zip nor .npy for a pickle and advises unpickling them; the
    line says what the file is not instead."""
    bad = tmp_path / "junk.npz"
    bad.write_bytes(b"hello, not a numpy file")
    for argv in (["simulate", str(ws["ART"]), "--input", str(bad), "--out", str(tmp_path / "o.h5")],
                 ["verify", str(ws["ART"]), "--golden", str(bad)]):
        assert main(argv) == 2
        err = capfd.readouterr().err
        assert "is no zip archive" in err and "pickle" not in err, err
