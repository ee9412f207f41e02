"""One launch of each parity stack for every module here (`scope="package"`: pytest runs all
of one stack's tests, across modules, before the next stack starts), since a start is most of
what these tests cost (a Ray stack: about two minutes on 2 cores).

The stack is what both modules need at once: a bad revision (`postprocess.fail_ratio`
`FAIL_RATIO`), so a request sent with `FAILS` as its `x-request-id` fails in post-processing on
every stack and one sent with `PASSES` never does (test_bad_requests), and a short request-body
timeout, so a slow body is cut within seconds (test_fuzz, whose valid requests send `PASSES`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from loadtests.stacks import StackHandle, launch
from shared_pipeline.config import Settings
from tests.parity.stacks import BODY_TIMEOUT_S, PARITY_STACKS
from tests.parity.table import FAIL_RATIO


@pytest.fixture(scope="package", params=PARITY_STACKS)
def stack(request: pytest.FixtureRequest, settings: Settings,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    parity = settings.model_copy(update={
        "postprocess": settings.postprocess.model_copy(update={"fail_ratio": FAIL_RATIO}),
        "server": settings.server.model_copy(update={"body_timeout_s": BODY_TIMEOUT_S})})
    # Ray's ingress reads its limits from the environment its replica inherits.
    os.environ["TWINSERVE_SERVER__BODY_TIMEOUT_S"] = str(BODY_TIMEOUT_S)
    try:
        with launch(request.param, parity, tmp_path_factory.mktemp(f"parity-{request.param}")
                    ) as handle:
            print(f"\n{request.param} ready in {handle.startup_s:.1f}s at {handle.url}")
            yield handle
    finally:
        os.environ.pop("TWINSERVE_SERVER__BODY_TIMEOUT_S", None)
