"""Test neuron families (issue 12): each is its two family modules and nothing else.

``<name>_float.py`` is the float side (torch layer, step, extraction, NIR body, quantization,
registration) and ``<name>_hw.py`` the hardware side (integer record, kernel, registration); adding
one touches only those two modules, one registry line each, and tests.
"""
