"""JSON payloads of a chosen size, shaped like what travels between stages (passages)."""

from __future__ import annotations

import json
from typing import Any

KB = 1024
DEFAULT_SIZES = (1 * KB, 10 * KB, 100 * KB)


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The JSON body as an HTTP client sends it (compact separators)."""
    return json.dumps(payload, separators=(",", ":")).encode()


def make_payload(size: int) -> dict[str, Any]:
    """A JSON object whose compact encoding is exactly `size` bytes (size >= 128).

    It holds a list of passage-like documents (id, title, text), as a `PipelineState` does, so a
    serializer sees nesting and strings, not one flat blob.
    """
    if size < 128:
        raise ValueError(f"payload size must be at least 128 bytes, not {size}")
    docs: list[dict[str, Any]] = []
    payload: dict[str, Any] = {"request_id": "0" * 32, "documents": docs}
    base = len(body_bytes(payload))
    per_doc = 1024
    remaining = size - base
    i = 0
    while remaining > 0:
        doc = {"id": f"d{i}", "title": f"passage {i}", "text": ""}
        overhead = len(body_bytes(doc)) + (1 if docs else 0)  # the comma between items
        if remaining < overhead + 1 and docs:  # too little room for another item: pad the last
            docs[-1]["text"] += "x" * remaining
            break
        text = max(1, min(per_doc, remaining - overhead))
        doc["text"] = "x" * text
        docs.append(doc)
        remaining -= overhead + text
        i += 1
    actual = len(body_bytes(payload))
    if actual != size:  # a last adjustment (e.g. the first item had no comma)
        docs[-1]["text"] = docs[-1]["text"][: len(docs[-1]["text"]) - (actual - size)] \
            if actual > size else docs[-1]["text"] + "x" * (size - actual)
    return payload


def size_label(size: int) -> str:
    return f"{size // KB} KB" if size % KB == 0 else f"{size} B"
