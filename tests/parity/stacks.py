"""The entries the parity tables compare.

The orchestrated KServe entry is checked against the same tables (`tests/parity/table.py`) on its
own module stack, in tests/kserve_impl/test_orchestrated_e2e.py: one stack launch less.
"""

PARITY_STACKS = ("inprocess", "kserve", "rayserve")
BODY_TIMEOUT_S = 3.0  # the parity stacks' request-body timeout: a slow body is cut in seconds
