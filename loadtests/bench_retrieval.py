"""Retrieval benchmark: recall of each retriever, of fusion, and of the passages in the prompt.

A question counts as recalled at k when a passage of its labelled pydoc topic is among the first
k. "prompt" is what the generator is given: the pipeline's own retrieve and rerank stages, run as
they run on both stacks. Figures are per split of the shipped questions: `tuning` (the settings
were chosen on them) and `heldout` (written afterwards and only measured). Deterministic; prints
a table. Run:

    python -m loadtests.bench_retrieval [--out results.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from shared_pipeline.config import Settings
from shared_pipeline.index import PassageIndex
from shared_pipeline.samples import SampleQuestion, load_questions
from shared_pipeline.schemas import PipelineState, parse_chat_request
from shared_pipeline.stages.rerank import Reranker
from shared_pipeline.stages.retrieve import Retriever

KS = (3, 5)
SPLITS = ("all", "tuning", "heldout")


def ranked_titles(question: str, retriever: Retriever, reranker: Reranker,
                  settings: Settings) -> dict[str, list[str]]:
    """The topic titles each method ranks first, deepest k of `KS`; `prompt` is the reranked
    passages exactly as the pipeline hands them to the generator."""
    depth = max(KS)
    state = PipelineState.start(parse_chat_request(
        {"messages": [{"role": "user", "content": question}]}, settings))
    reranker.run(retriever.run(state))
    return {
        "sparse": [retriever.passages[h.index].title
                   for h in retriever.search_sparse(question, depth)],
        "dense": [retriever.passages[h.index].title
                  for h in retriever.search_dense(question, depth)],
        "fused": [d.title for d in retriever.search(question, depth)],
        "prompt": [d.title for d in state.reranked],
    }


def measure_recall(settings: Settings, questions: list[SampleQuestion] | None = None
                   ) -> dict[str, dict[str, float | int]]:
    """split -> {"questions": n, "<method>@<k>": recall}; prompt only at its own depth
    (`rerank.top_n`)."""
    index = PassageIndex(settings)
    retriever, reranker = Retriever(settings, index), Reranker(settings, index)
    questions = questions if questions is not None else load_questions()
    prompt_k = settings.rerank.top_n
    hits: dict[str, dict[str, int]] = {split: {} for split in SPLITS}
    counts = dict.fromkeys(SPLITS, 0)
    for q in questions:
        titles = ranked_titles(q.question, retriever, reranker, settings)
        for split in ("all", q.split):
            counts[split] += 1
            for method, found in titles.items():
                for k in (prompt_k,) if method == "prompt" else KS:
                    key = f"{method}@{k}"
                    hits[split][key] = hits[split].get(key, 0) + (q.topic in found[:k])
    return {split: {"questions": counts[split],
                    **{key: round(n / counts[split], 3) for key, n in hits[split].items()}}
            for split in SPLITS if counts[split]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    settings = Settings()
    results = measure_recall(settings)
    columns = [key for key in next(iter(results.values())) if key != "questions"]
    table = Table(title=f"retrieval recall@k · {settings.retrieve.top_k} candidates, "
                        f"{settings.rerank.top_n} prompt passages · labelled pydoc topics")
    table.add_column("questions")
    table.add_column("n", justify="right")
    for key in columns:
        table.add_column(key, justify="right")
    for split, row in results.items():
        table.add_row(split, str(row["questions"]), *(f"{row.get(k, 0):.3f}" for k in columns))
    Console(width=max(Console().width, 120)).print(table)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
