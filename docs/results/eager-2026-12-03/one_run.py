"""One `loadtests.bench_engines.engine_throughput` run on vLLM: batches 1, 1, 4, 8 of the same
624-token RAG prompt, 32 tokens each (a file, not stdin: vLLM spawns its engine process from it)."""
import asyncio
import json

from loadtests.bench_engines import engine_throughput
from shared_pipeline.config import Settings

if __name__ == "__main__":
    print(json.dumps(asyncio.run(engine_throughput(Settings(), "vllm", [1, 1, 4, 8], 32))))
