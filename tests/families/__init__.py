"""Test families: neuron families kept in the tests, each one module per side (``<name>_hw.py``:
integer record, numba kernel, registration; ``<name>_float.py``: the float side), to show that
a family needs nothing else (``docs/architecture.md``). Importing a module registers its kind."""
