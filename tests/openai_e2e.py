"""What both stacks' end-to-end tests ask and check, through the openai client, identically."""

from __future__ import annotations

import time

from openai import OpenAI

from shared_pipeline.schemas import STAGES


def ask_all(client: OpenAI, questions: list[tuple[str, str | None]], max_tokens: int,
            id_prefix: str) -> list[dict]:
    """Ask each (question, forced tier or None) once, without streaming; return the answers."""
    results = []
    for i, (question, tier) in enumerate(questions):
        started = time.perf_counter()
        completion = client.chat.completions.create(
            model="pipeline", messages=[{"role": "user", "content": question}],
            max_tokens=max_tokens, temperature=0.0,
            extra_body={"pipeline": {"tier": tier}} if tier else None,
            extra_headers={"x-request-id": f"{id_prefix}-{i}"})
        print(f"{question!r}: {time.perf_counter() - started:.2f}s")
        results.append(completion.model_dump())
    return results


def check_answer(answer: dict, revision: str, request_id: str, max_tokens: int) -> None:
    """An answer carries text, citations (or the flag), tier with reason, revision, timings."""
    ext = answer["pipeline"]
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"].strip()
    assert ext["revision"] == revision
    assert ext["tier"] in ("small", "large") and ext["tier_reason"]
    assert ext["request_id"] == request_id  # x-request-id reached every stage
    assert list(ext["timings"]) == list(STAGES)
    assert ext["citations"] or ext["cites_nothing"]
    # What the answer rests on: the prompt's passages in order; citations are a subset of them.
    assert [d["rank"] for d in ext["documents"]] == list(range(1, len(ext["documents"]) + 1))
    assert ext["documents"] and all(set(d) == {"id", "title", "score", "rank"}
                                    for d in ext["documents"])
    assert {c["id"] for c in ext["citations"]} <= {d["id"] for d in ext["documents"]}
    assert 0 < answer["usage"]["completion_tokens"] <= max_tokens
