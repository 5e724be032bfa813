"""Hardware profiles: the integer formats a target offers, read from TOML data files.

Profiles ship in ``hw_models/profiles/`` (``loihi2`` is the default); a user may pass a path to
their own file with the same keys.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from silif_deploy.errors import SilifDeployError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (the Lava environment)
    import tomli as tomllib

PROFILE_DIR = Path(__file__).with_name("profiles")
DEFAULT_PROFILE = "loihi2"
OVERFLOW_MODES = ("wrap", "saturate")


@dataclass(frozen=True)
class HardwareProfile:
    """Integer formats of one target (see ``profiles/loihi2.toml`` for the meaning of each key)."""

    name: str
    description: str
    weight_bits: int
    weight_exp_min: int
    weight_exp_max: int
    state_bits: int
    input_shift: int
    current_overflow: str
    membrane_overflow: str
    adaptation_overflow: str
    coefficient_bits: int
    threshold_mantissa_bits: int
    threshold_exponent: int
    bias_mantissa_bits: int
    bias_exponent_max: int
    graded_input: bool
    input_message_bits: int
    default_state_range: float
    calibration_headroom: float
    source_text: str = ""

    @property
    def state_max(self) -> int:
        """Largest state magnitude: states live in [−(2^(bits−1) − 1), 2^(bits−1) − 1]."""
        return (1 << (self.state_bits - 1)) - 1

    @property
    def overflow_codes(self) -> dict[str, int]:
        """The overflow rule of each state class, by the name kinds declare it with
        (``NeuronKind.overflow_rules``): "current", "membrane", "adaptation" → 0 wrap, 1 saturate."""
        from silif_deploy.hw_models.fixed_point import OVERFLOW_CODES  # lazily: it loads numba, profiles load at CLI start

        return {rule: OVERFLOW_CODES[getattr(self, f"{rule}_overflow")] for rule in ("current", "membrane", "adaptation")}

    @property
    def max_threshold(self) -> int:
        return ((1 << self.threshold_mantissa_bits) - 1) << self.threshold_exponent

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k != "source_text"}


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def read_profile_text(path: Path) -> str:
    """A profile file's text; one line for a file that is not a readable UTF-8 text file."""
    if not path.is_file():  # a pipe or device would block the reader
        raise SilifDeployError(f"profile '{path}' is not a regular file; give a .toml file")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise SilifDeployError(f"profile '{path}' is not UTF-8 text (byte {err.start}); give a TOML file") from None
    except OSError as err:
        raise SilifDeployError(f"profile '{path}' cannot be read: {err.strerror or err}") from None


def load_profile(name_or_path: str | Path | None = None) -> HardwareProfile:
    """Load a shipped profile by name (``loihi2``, ``loihi2-wide``) or a user's TOML file by path."""
    ref = str(name_or_path or DEFAULT_PROFILE)
    path = Path(ref)
    if not (path.suffix == ".toml" and path.exists()):
        path = PROFILE_DIR / f"{ref}.toml"
        if not path.exists():
            raise SilifDeployError(
                f"unknown hardware profile '{ref}'; use one of {', '.join(available_profiles())} or a .toml path"
            )
    return profile_from_text(read_profile_text(path), origin=str(path))


def _get(data: dict, key: str, kind: type):
    """``data[section][name]`` for key ``section.name`` (or a top-level name), of type ``kind`` exactly
    (TOML distinguishes 8 from 8.5 and from true; a silent int(8.5) would change the hardware)."""
    node = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise _ProfileError(f"{key} is missing")
        node = node[part]
    if kind is float and isinstance(node, int) and not isinstance(node, bool):
        node = float(node)
    if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
        raise _ProfileError(f"{key} must be {'an integer' if kind is int else 'a number' if kind is float else f'a {kind.__name__}'}, "
                            f"got {node!r}")
    return node


class _ProfileError(ValueError):
    pass


def profile_from_text(text: str, origin: str = "artifact") -> HardwareProfile:
    """Parse a profile's TOML text (a profile file, or the copy an artifact carries) and check every field."""
    try:
        data = tomllib.loads(text)
        profile = HardwareProfile(
            name=_get(data, "name", str),
            description=str(data.get("description", "")),
            weight_bits=_get(data, "weights.bits", int),
            weight_exp_min=_get(data, "weights.exponent_min", int),
            weight_exp_max=_get(data, "weights.exponent_max", int),
            state_bits=_get(data, "state.bits", int),
            input_shift=_get(data, "state.input_shift", int),
            current_overflow=_get(data, "state.current_overflow", str),
            membrane_overflow=_get(data, "state.membrane_overflow", str),
            adaptation_overflow=_get(data, "state.adaptation_overflow", str),
            coefficient_bits=_get(data, "coefficients.bits", int),
            threshold_mantissa_bits=_get(data, "threshold.mantissa_bits", int),
            threshold_exponent=_get(data, "threshold.exponent", int),
            bias_mantissa_bits=_get(data, "bias.mantissa_bits", int),
            bias_exponent_max=_get(data, "bias.exponent_max", int),
            graded_input=_get(data, "spikes.graded_input", bool),
            input_message_bits=_get(data, "spikes.input_message_bits", int),
            default_state_range=_get(data, "calibration.default_state_range", float),
            calibration_headroom=_get(data, "calibration.headroom", float),
            source_text=text,
        )
    except _ProfileError as err:
        raise SilifDeployError(f"hardware profile '{origin}': {err}") from None
    except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as err:
        raise SilifDeployError(f"hardware profile '{origin}' is invalid: {type(err).__name__}: {err}") from None
    _validate(profile, origin)
    return profile


MAX_INPUT_MESSAGE_BITS = 24
"""Graded payloads (Loihi 2 graded spikes, Lava Dense num_message_bits) are at most 24 bits; the
kernels' int64 sums stay exact for payload × weight × fan-in well within that."""


def _validate(p: HardwareProfile, origin: str) -> None:
    """Every field within what the integer kernels compute without overflow or undefined shifts."""
    problems = []
    for field in ("current_overflow", "membrane_overflow", "adaptation_overflow"):
        if getattr(p, field) not in OVERFLOW_MODES:
            problems.append(f"{field} must be one of {OVERFLOW_MODES}")
    checks = [
        ("weights.bits", p.weight_bits, 2, 16, "Lava's Dense takes up to 8"),
        ("weights.exponent_min", p.weight_exp_min, -16, 16, ""),
        ("weights.exponent_max", p.weight_exp_max, -16, 16, ""),
        ("state.bits", p.state_bits, 8, 32, ""),
        ("state.input_shift", p.input_shift, 0, 16, "Lava LIF: 6"),
        ("coefficients.bits", p.coefficient_bits, 4, 24, ""),
        ("threshold.mantissa_bits", p.threshold_mantissa_bits, 1, 31, "Lava LIF: 17"),
        ("threshold.exponent", p.threshold_exponent, 0, 16, "Lava LIF: 6"),
        ("bias.mantissa_bits", p.bias_mantissa_bits, 2, 32, "Lava LIF: 13"),
        ("bias.exponent_max", p.bias_exponent_max, 0, 24, ""),
        ("spikes.input_message_bits", p.input_message_bits, 1, MAX_INPUT_MESSAGE_BITS,
         "0 would send no input at all"),
    ]
    for key, value, low, high, note in checks:
        if not low <= value <= high:
            problems.append(f"{key} must be {low}..{high}{f' ({note})' if note else ''}, got {value}")
    if p.weight_exp_min > p.weight_exp_max:
        problems.append(f"weights.exponent_min ({p.weight_exp_min}) must be <= exponent_max ({p.weight_exp_max})")
    if p.threshold_mantissa_bits + p.threshold_exponent > p.state_bits:
        problems.append(f"the largest threshold (threshold.mantissa_bits + exponent = "
                        f"{p.threshold_mantissa_bits + p.threshold_exponent} bits) must fit state.bits ({p.state_bits})")
    if p.bias_mantissa_bits > p.state_bits:
        problems.append(f"bias.mantissa_bits ({p.bias_mantissa_bits}) must be <= state.bits ({p.state_bits})")
    if not (math.isfinite(p.default_state_range) and p.default_state_range > 0):
        problems.append(f"calibration.default_state_range must be a finite number > 0, got {p.default_state_range}")
    if not (math.isfinite(p.calibration_headroom) and p.calibration_headroom >= 1):
        problems.append(f"calibration.headroom must be a finite number >= 1, got {p.calibration_headroom}")
    if not p.name.strip():
        problems.append("name must not be empty")
    if problems:
        raise SilifDeployError(f"hardware profile '{origin}': {'; '.join(problems)}")
