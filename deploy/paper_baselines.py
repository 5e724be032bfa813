"""Analytic SOP counts of the state-space-model baselines in the SiLIF paper's Figure 3.

The authors' ``partial_figure3_synops.py`` (repo Maxtimer97/SSM-inspired-LIF) hard-codes them
without comment (``metrics_energy.md`` §2.2). The functions below reproduce the numbers exactly and
name each factor; the reading of the Event-SSM terms is ours:

* ≈8,000 input events per SSC sample, each passing through two d × d projections;
* ≈1,000 pooled steps (8,000 events / pooling stride 8), each through eight d × d projections.

(The Event-SSM SSC "small" config: d_model 64, d_ssm 64, 6 layers, pooling stride 8.) Place a
spiking model's SOP per sample (:mod:`silif_deploy.hw_models.metrics`) against these points.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BaselinePoint:
    """One comparison point of the paper's Figure 3: SOP per sample and the accuracy it was paired with."""

    model: str
    dataset: str
    sops: float
    accuracy: float | None
    status: str
    source: str


def event_ssm_sops(
    events: int = 8000,
    d: int = 64,
    pooled_steps: int = 1000,
    event_projections: int = 2,
    pooled_projections: int = 8,
) -> int:
    """Event-SSM SOP per sample = events·d²·event_projections + pooled_steps·d²·pooled_projections.

    Defaults give the paper's SSC figure: 8000·64·64·2 + 1000·64·64·8 = 98,304,000.
    """
    return events * d * d * event_projections + pooled_steps * d * d * pooled_projections


def s5rf_sops(steps: int = 250, sops_per_step: int = 21_751) -> int:
    """S5-RF SOP per sample as the script writes it, 250 · 21,751 = 5,437,750 (the split is not documented)."""
    return steps * sops_per_step


_SCRIPT = "partial_figure3_synops.py (Maxtimer97/SSM-inspired-LIF)"

FIGURE3_BASELINES: tuple[BaselinePoint, ...] = (
    BaselinePoint("Event-SSM, 64 states", "SSC", event_ssm_sops(), 0.853, "source", _SCRIPT),
    BaselinePoint("S5-RF", "SSC", s5rf_sops(), 0.788, "source", _SCRIPT),
    BaselinePoint("Event-SSM, 128 states", "SHD", 288.8e6, None, "paper",
                  "SiLIF paper, Figure 3 (decomposition not public: not derived)"),
)
