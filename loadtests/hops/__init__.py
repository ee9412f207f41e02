"""Pieces of the hop benchmark (`python -m loadtests.bench_hops`): null stages behind each
transport, the payloads they carry, the timing loop, and the real `PipelineState` sizes."""
