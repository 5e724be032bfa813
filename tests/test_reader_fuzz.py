"""Property-based fuzzing of the readers: random mutations of valid files (``file_mutations``).

Every outcome must be a clean refusal (:class:`SilifDeployError`) or an accepted file that the
engines run without error; a no-op mutation must give exactly what the unmutated file gives.
Beyond that, per format:

- artifact: an accepted mutant that changes any output or state also changes the artifact's
  identity, so ``verify --golden`` fails on it (values within the legal ranges are legal hardware:
  the reader cannot tell an edit from an export, the identity can);
- NIR: no accepted mutant changes the model's outputs (the payload and the body must agree);
- golden: a mutant of a checked member either is refused or makes ``verify`` fail;
- inputs: an accepted input is finite, 3-D and numeric.

Seeds are fixed (``derandomize``): the same mutants run in every CI run.
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from file_mutations import KINDS, SPECIALS, apply_h5, h5_entries, h5_mutations, mutate_npz, npz_members  # noqa: E402
from test_hostile_cli import write_shd  # noqa: E402

from silif_deploy.converters.artifact import artifact_identity, read_artifact  # noqa: E402
from silif_deploy.converters.checkpoint import save_checkpoint  # noqa: E402
from silif_deploy.converters.datasets import load_input  # noqa: E402
from silif_deploy.converters.nir_import import model_from_nir_file  # noqa: E402
from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402
from silif_deploy.deploy.verification import verify_golden  # noqa: E402
from silif_deploy.errors import SilifDeployError  # noqa: E402
from silif_deploy.hw_models.simulator import simulate  # noqa: E402

N_IN = 10
def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
OUTCOMES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
CHANGED: list[tuple] = []  # accepted artifact mutants that changed outputs (values within the legal ranges)


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    torch.manual_seed(5)
    model = SpikingNetwork(NetworkConfig("csilif", N_IN, [8, 8], 4, pdrop=0.0)).eval()
    with torch.no_grad():
        for layer in model.hidden_layers:
            layer.norm.weight.fill_(2.0)  # every layer spikes: mutations have something to change
    save_checkpoint(model, d / "m.pt")
    with pytest.MonkeyPatch.context() as env:  # fixed time stamps: the same bytes, so the same mutants, every run
        env.setenv("SOURCE_DATE_EPOCH", "1700000000")
        assert main(["export", str(d / "m.pt"), "--target", "loihi2", "-o", str(d)]) == 0
        x = np.random.default_rng(0).poisson(0.6, (3, 16, N_IN)).astype(np.int16)
        np.savez(d / "x.npz", input=x, labels=np.array([0, 1, 3]))
        assert main(["golden", str(d / "m.loihi2.h5"), "--input", str(d / "x.npz"), "-o", str(d / "g.npz")]) == 0
    rng = np.random.default_rng(2)
    write_shd(d / "d.h5", [np.sort(rng.uniform(0, 0.9, 20)) for _ in range(3)],
              [rng.integers(0, 700, 20) for _ in range(3)], np.array([0, 1, 2], np.uint8))
    return d, x


def _fixed_outputs(network, x) -> list[np.ndarray]:
    r = simulate(network, x, record_states=True)
    return [r.scores, *r.spikes, *r.states.values()]


def _equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(u.shape == v.shape and np.array_equal(u, v) for u, v in zip(a, b))


def _entries(path: Path, skip: str = "") -> list:
    return [e for e in h5_entries(path) if not (skip and e[0].startswith(skip))]


def test_artifact_reader(valid, tmp_path_factory):
    d, x = valid
    src = d / "m.loihi2.h5"
    base = read_artifact(src)
    reference, identity = _fixed_outputs(base, x), artifact_identity(base)
    work = tmp_path_factory.mktemp("artifact_mutants") / "m.loihi2.h5"
    counts = OUTCOMES["artifact"]

    @fuzz(200)
    @given(h5_mutations(_entries(src, "float_model")))
    def check(mutation):
        apply_h5(src, work, mutation)
        try:
            network = read_artifact(work)
        except SilifDeployError:
            counts["refused"] += 1
            return
        outputs = _fixed_outputs(network, x)  # an accepted artifact runs
        same = _equal(outputs, reference)
        if mutation[1] == "noop":
            assert same and artifact_identity(network) == identity, mutation
        if not same:
            assert artifact_identity(network) != identity, f"{mutation} changed outputs but not the identity"
        counts["accepted, outputs unchanged" if same else "accepted, outputs changed (identity changed)"] += 1
        if not same:
            CHANGED.append(mutation[:3])

    check()
    assert counts["refused"] > 50


def test_nir_reader(valid, tmp_path_factory):
    d, x = valid
    src = d / "m.nir"
    reference = model_from_nir_file(src).run(x.astype(np.float32))
    work = tmp_path_factory.mktemp("nir_mutants") / "m.nir"
    counts = OUTCOMES["nir"]

    @fuzz(100)
    @given(h5_mutations(_entries(src)))
    def check(mutation):
        apply_h5(src, work, mutation)
        try:
            model = model_from_nir_file(work)
        except SilifDeployError:
            counts["refused"] += 1
            return
        out = model.run(x.astype(np.float32))
        same = _equal([out.scores, *out.spikes], [reference.scores, *reference.spikes])
        assert same, f"{mutation} was accepted and changed the model's outputs"
        counts["accepted, outputs unchanged"] += 1

    check()
    assert counts["refused"] > 50


CHECKED = ("input", "spikes_", "readout_v", "state_digests_", "neuron_digests_", "artifact_identity", "n_neurons",
           "format", "format_version")


def test_golden_reader(valid, tmp_path_factory):
    d, _ = valid
    src, artifact = d / "g.npz", d / "m.loihi2.h5"
    work = tmp_path_factory.mktemp("golden_mutants") / "g.npz"
    with np.load(src) as z:
        original = {k: z[k] for k in z.files}
    counts = OUTCOMES["golden"]

    @fuzz(60)
    @given(st.sampled_from(npz_members(src)), st.sampled_from(KINDS), st.sampled_from(SPECIALS),
           st.integers(0, 2**32 - 1))
    def check(member, kind, special, seed):
        mutate_npz(src, work, member, kind, special, seed)
        try:
            first, _ = verify_golden(artifact, work)
        except SilifDeployError:
            counts["refused"] += 1
            return
        with np.load(work) as z:
            new, old = (z[member] if member in z.files else None), original[member]
            changed = new is None or new.shape != old.shape or new.dtype != old.dtype or \
                not np.array_equal(new, old, equal_nan=old.dtype.kind == "f")
        if not changed:
            assert first is None, (member, kind, first)
        elif member.startswith(CHECKED) and member != "input":
            assert first is not None, f"golden member {member} changed ({kind}) and verify still passed"
        counts["accepted, verify " + ("failed" if first else "passed")] += 1

    check()


def test_input_readers(valid, tmp_path_factory):
    d, _ = valid
    work = tmp_path_factory.mktemp("input_mutants")
    npz_src, h5_src = d / "x.npz", d / "d.h5"
    base_npz, base_h5 = load_input(npz_src), load_input(h5_src)
    counts = OUTCOMES["inputs"]

    @fuzz(150)
    @given(st.booleans(), st.sampled_from(npz_members(npz_src)), st.sampled_from(KINDS), st.sampled_from(SPECIALS),
           st.integers(0, 2**32 - 1), h5_mutations(_entries(h5_src)))
    def check(use_npz, member, kind, special, seed, h5_mutation):
        if use_npz:
            path, base = work / "x.npz", base_npz
            mutate_npz(npz_src, path, member, kind, special, seed)
            noop = kind == "noop"
        else:
            path, base = work / "d.h5", base_h5
            apply_h5(h5_src, path, h5_mutation)
            noop = h5_mutation[1] == "noop"
        try:
            data = load_input(path)
        except SilifDeployError:
            counts["refused"] += 1
            return
        assert data.x.ndim == 3 and data.x.dtype.kind in "biuf" and data.x.shape[0] > 0 and data.x.shape[1] > 0
        assert np.isfinite(data.x).all()
        if data.labels is not None:
            assert data.labels.dtype == np.int64 and len(data.labels) == len(data.x)
        if noop:
            np.testing.assert_array_equal(data.x, base.x)
        counts["accepted"] += 1

    check()


def test_zz_report(capsys):
    """Print what the fuzzers saw (pytest -s shows it)."""
    with capsys.disabled():
        for reader, counts in OUTCOMES.items():
            print(f"\nfuzz {reader}: {dict(counts)}")
        for mutation in CHANGED:
            print(f"accepted artifact mutant that changed outputs (and the identity): {mutation}")
