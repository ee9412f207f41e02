"""Two tiers with two different checkpoints each load and answer with their own, in process.

The second checkpoint is a tiny random Llama (two layers) saved next to SmolLM2's tokenizer: a
real checkpoint folder with a different name and shape, made in a few seconds. Its answers are
noise; what matters is which model produced them.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from kserve_impl.generate import GeneratorModel
from shared_pipeline.config import Settings
from shared_pipeline.metrics import PipelineMetrics, prometheus_instruments
from shared_pipeline.pipeline import InProcessPipeline
from shared_pipeline.schemas import parse_chat_request
from shared_pipeline.served_models import models_list

pytestmark = pytest.mark.slow


def tiny_llama(settings: Settings, target: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    source = settings.model_dir
    target.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                 "generation_config.json"):
        if (source / name).exists():
            shutil.copy(source / name, target / name)
    base = LlamaConfig.from_pretrained(source)
    config = LlamaConfig(vocab_size=base.vocab_size, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=base.max_position_embeddings,
                         bos_token_id=base.bos_token_id, eos_token_id=base.eos_token_id,
                         tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(target)
    return target


@pytest.fixture(scope="module")
def two_tiers(settings: Settings, tmp_path_factory) -> Settings:
    large = tiny_llama(settings, tmp_path_factory.mktemp("models") / "tiny-llama")
    tiers = settings.generate.tiers.model_copy(update={
        "large": settings.generate.tiers.large.model_copy(update={"model": str(large)})})
    return settings.model_copy(update={"generate": settings.generate.model_copy(
        update={"tiers": tiers, "engine": "transformers"})})


def test_each_tier_loads_and_answers_with_its_own_model(two_tiers: Settings) -> None:
    pipeline = InProcessPipeline(two_tiers)
    small, large = pipeline.generators["small"].engine, pipeline.generators["large"].engine
    assert small is not large
    assert (small.model_name, large.model_name) == ("smollm2-135m-instruct", "tiny-llama")

    async def ask(tier: str) -> dict:
        request = parse_chat_request({"messages": [{"role": "user", "content": "What is a list?"}],
                                      "max_tokens": 4, "pipeline": {"tier": tier}}, two_tiers)
        return await pipeline.answer(request)

    async def run() -> tuple[dict, dict]:
        await pipeline.start()
        try:
            return await ask("small"), await ask("large")
        finally:
            await pipeline.stop()

    on_small, on_large = asyncio.run(run())
    assert small.model.config.num_hidden_layers != large.model.config.num_hidden_layers
    assert on_small["model"] == on_large["model"] == "pipeline"  # what clients ask for
    assert (on_small["pipeline"]["tier"], on_small["pipeline"]["model"]) == (
        "small", "smollm2-135m-instruct")
    assert (on_large["pipeline"]["tier"], on_large["pipeline"]["model"]) == (
        "large", "tiny-llama")
    card = models_list(two_tiers, "inprocess")["data"][0]
    assert card["id"] == "pipeline"
    assert card["pipeline"]["tiers"]["large"] == {"model": "tiny-llama", "engine": "transformers"}


def test_the_kserve_generator_loads_its_tier_model(two_tiers: Settings) -> None:
    """The KServe generator server's model object, built in process (no server started)."""
    metrics = PipelineMetrics("kserve", prometheus_instruments())
    model = GeneratorModel("generator-large", two_tiers, metrics, "large")
    model.build(two_tiers)
    try:
        assert model.engine.model_name == "tiny-llama"
        assert model.engine.model.config.num_hidden_layers == 2
    finally:
        asyncio.run(model.engine.stop())
