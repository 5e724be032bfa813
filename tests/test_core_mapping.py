"""Core mapping: hand-computed core counts, and networks that cannot fit a chip refused by name."""

from __future__ import annotations

import pytest

from conftest import HAS_TORCH, checkpoint_path
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.core_mapping import LayerShape, layer_shapes, map_to_cores
from silif_deploy.hw_models.energy_profile import load_energy_profile

# SSC SiLIF 140 → 2×512 → 35 at 8-bit weights and 24-bit states. State memory per neuron, in 24-bit
# words plus the spike bit: SiLIF 2 states + 6 per-neuron parameters (α, g, β, a, b, bias) = 193 bits;
# the CUBA readout 2 states + 4 parameters (du, dv, bias mantissa, bias exponent) = 145 bits.
SSC = [LayerShape("L0", 512, 140, 8, 193), LayerShape("L1", 512, 512, 8, 193), LayerShape("readout", 35, 512, 8, 145)]
MEMORY_BITS = 128 * 1024 * 8


def test_ssc_on_loihi2_by_hand():
    # Loihi 2: synapses and state share 128 KB. L1: 512·8 + 193 = 4,289 bits per neuron,
    # 1,048,576 // 4,289 = 244 neurons per core → 3 cores of 171. L0: 140·8 + 193 = 1,313 bits,
    # 798 per core → 1 core. Readout: 512·8 + 145 = 4,241 bits, 247 per core → 1 core.
    m = map_to_cores(SSC, load_energy_profile("loihi2"))
    assert MEMORY_BITS // (512 * 8 + 193) == 244
    assert m.cores == [1, 3, 1] and m.total_cores == 5
    l0, l1, ro = m.layers
    assert l1.neurons_per_core == 171 and l1.tightest_limit == "memory_per_core"
    assert l1.synaptic_bytes_per_core == 171 * 512
    assert l1.state_bytes_per_core == pytest.approx(171 * 193 / 8)
    assert l0.output_axons_per_core == 512 * 3  # every L0 neuron reaches the 3 cores of L1
    assert ro.output_axons_per_core == 35      # the readout sends to the host
    assert m.figures["neurons_per_core"]["status"] == "secondary"


def test_ssc_on_loihi1_by_hand():
    # Loihi 1: 128 KB hold synapses only. L1: 512·8 = 4,096 bits → 256 per core → 2 cores.
    m = map_to_cores(SSC, load_energy_profile("loihi1"))
    assert m.cores == [1, 2, 1] and m.total_cores == 4
    assert m.layers[1].neurons_per_core == 256


def test_neurons_per_core_limit():
    # 1-bit weights, fan-in 16: memory allows 1,048,576 // 16 = 65,536 neurons, Loihi 1 only 1,024.
    m = map_to_cores([LayerShape("L0", 3000, 16, 1, 0)], load_energy_profile("loihi1"))
    assert m.cores == [3] and m.layers[0].tightest_limit == "neurons_per_core"


def test_fan_in_refused():
    with pytest.raises(SilifDeployError, match=r"L0 has fan-in 5000.*fan_in_per_core = 4096 count \(assumed\)"):
        map_to_cores([LayerShape("L0", 10, 5000, 8, 193)], load_energy_profile("loihi2"))


def test_too_many_cores_refused():
    # 100·8 + 193 = 993 bits → 1,055 neurons per core → 190 cores for 200,000 neurons > 128.
    with pytest.raises(SilifDeployError, match=r"needs 190 cores.*breaks cores_per_chip = 128 count \(secondary\)"):
        map_to_cores([LayerShape("L0", 200_000, 100, 8, 193)], load_energy_profile("loihi2"))


def test_too_many_synapses_refused():
    # 1-bit weights, fan-in 4,096: 256 neurons per core, 118 cores (fits), but 122,880,000 synapses > 120 M.
    with pytest.raises(SilifDeployError, match=r"122,880,000 synapses break synapses_per_chip"):
        map_to_cores([LayerShape("L0", 30_000, 4096, 1, 0)], load_energy_profile("loihi2"))


def test_profile_without_chip_figures():
    with pytest.raises(SilifDeployError, match="no chip figures"):
        map_to_cores(SSC, load_energy_profile("generic-45nm"))


@pytest.mark.skipif(not HAS_TORCH, reason="loads a checkpoint")
def test_layer_shapes_of_the_ssc_silif_network():
    from silif_deploy.converters.checkpoint import load_model
    from silif_deploy.converters.float_params import float_network
    from silif_deploy.converters.quantize import quantize
    from silif_deploy.hw_models.profile import load_profile

    network = quantize(float_network(load_model(checkpoint_path("silif"))), load_profile())
    assert layer_shapes(network) == SSC
