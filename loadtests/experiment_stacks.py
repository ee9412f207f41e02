"""How an experiment gets its stack: started for it (`twinserve experiment`), or the one
`compare --experiment` started for its comparison, still up after its measurements (no second
start, minutes on a 2-core machine); either way with the stack's `StackControl`, whose servers
(canaries) stop before the stack does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from loadtests.stacks import BASE_STACK, SERVED_STACKS, StackHandle, launch
from shared_pipeline.config import Settings
from shared_pipeline.control import StackControl


def control_for(handle: StackHandle, settings: Settings) -> StackControl:
    """The stack's `StackControl` over what its launcher yielded (either KServe topology: the
    same control, whose canary split the entry, graph runner or orchestrator, applies)."""
    if BASE_STACK.get(handle.name, handle.name) == "kserve":
        from kserve_impl.rollout import KServeControl

        return KServeControl(handle.native.local, settings)
    if handle.name == "rayserve":
        from rayserve_impl.rollout import RayControl

        return RayControl(handle.native, settings)
    raise ValueError(f"experiments run on {', '.join(SERVED_STACKS)}, not {handle.name!r}")


@contextlib.contextmanager
def on_running(handle: StackHandle,
               settings: Settings) -> Iterator[tuple[StackHandle, StackControl]]:
    """A stack started elsewhere as experiments need it (`compare --experiment`'s, still up
    after its measurements) with its control; whatever the control started (canary servers)
    stops when the block ends, the stack stays up for its owner to stop."""
    control = control_for(handle, settings)
    try:
        yield handle, control
    finally:
        control.close()


@contextlib.contextmanager
def experiment_stack(stack: str, settings: Settings,
                     log_dir: Path) -> Iterator[tuple[StackHandle, StackControl]]:
    """Start `stack` as experiments need it (KServe supervised, as pods are) with its control;
    the control's servers stop before the stack does."""
    with launch(stack, settings, log_dir, supervise=True) as handle, \
            on_running(handle, settings) as running:
        yield running
