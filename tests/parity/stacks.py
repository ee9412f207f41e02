"""The entries the parity tables compare.

The orchestrated KServe entry has its own bad-input table in
tests/kserve_impl/test_orchestrated_e2e.py; it serves no /v1/completions or /health yet.
"""

PARITY_STACKS = ("inprocess", "kserve", "rayserve")
