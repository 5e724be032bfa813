"""Hardware profiles: the integer formats a target offers, read from TOML data files.

Profiles ship in ``hw_models/profiles/`` (``loihi2`` is the default); a user may pass a path to
their own file with the same keys.
"""

from __future__ import annotations

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
    def max_threshold(self) -> int:
        return ((1 << self.threshold_mantissa_bits) - 1) << self.threshold_exponent

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k != "source_text"}


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


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
    return profile_from_text(path.read_text(), origin=str(path))


def profile_from_text(text: str, origin: str = "artifact") -> HardwareProfile:
    """Parse a profile's TOML text (a profile file, or the copy an artifact carries)."""
    try:
        data = tomllib.loads(text)
        profile = HardwareProfile(
            name=str(data["name"]),
            description=str(data.get("description", "")),
            weight_bits=int(data["weights"]["bits"]),
            weight_exp_min=int(data["weights"]["exponent_min"]),
            weight_exp_max=int(data["weights"]["exponent_max"]),
            state_bits=int(data["state"]["bits"]),
            input_shift=int(data["state"]["input_shift"]),
            current_overflow=str(data["state"]["current_overflow"]),
            membrane_overflow=str(data["state"]["membrane_overflow"]),
            adaptation_overflow=str(data["state"]["adaptation_overflow"]),
            coefficient_bits=int(data["coefficients"]["bits"]),
            threshold_mantissa_bits=int(data["threshold"]["mantissa_bits"]),
            threshold_exponent=int(data["threshold"]["exponent"]),
            bias_mantissa_bits=int(data["bias"]["mantissa_bits"]),
            bias_exponent_max=int(data["bias"]["exponent_max"]),
            graded_input=bool(data["spikes"]["graded_input"]),
            input_message_bits=int(data["spikes"]["input_message_bits"]),
            default_state_range=float(data["calibration"]["default_state_range"]),
            calibration_headroom=float(data["calibration"]["headroom"]),
            source_text=text,
        )
    except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as err:
        raise SilifDeployError(f"hardware profile '{origin}' is invalid: {type(err).__name__}: {err}") from None
    _validate(profile, origin)
    return profile


def _validate(p: HardwareProfile, origin: str) -> None:
    problems = []
    for field in ("current_overflow", "membrane_overflow", "adaptation_overflow"):
        if getattr(p, field) not in OVERFLOW_MODES:
            problems.append(f"{field} must be one of {OVERFLOW_MODES}")
    if not 2 <= p.weight_bits <= 16:
        problems.append("weights.bits must be 2..16 (Lava's Dense takes up to 8)")
    if not 8 <= p.state_bits <= 32:
        problems.append("state.bits must be 8..32")
    if not 4 <= p.coefficient_bits <= 24:
        problems.append("coefficients.bits must be 4..24")
    if problems:
        raise SilifDeployError(f"hardware profile '{origin}': {'; '.join(problems)}")
