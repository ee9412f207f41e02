"""The part of GJSON path syntax the InferenceGraph manifests and tests use, with Go's `Exists()`.

KServe's router evaluates Switch conditions with `gjson.GetBytes(input, condition).Exists()`
(github.com/tidwall/gjson). This module implements only the subset twinserve needs, so the local
graph runner decides a route exactly as the router does for these forms:

- dotted keys (`pipeline.tier`, `\\.` escapes a dot), array indexes (`docs.0`), `#` (array length);
- queries on arrays: `#(path op value)` (first match) and `#(path op value)#` (all matches), with
  ops `==`, `=`, `!=`, `<`, `<=`, `>`, `>=`, `%` (like, `*`/`?` wildcards), `!%`, and `#(path)`
  (the path exists); a value is a quoted string, a number, `true`/`false`/`null`, or a bare word
  (compared as a string, as GJSON does);
- the `@this` modifier and multipaths `[a,b]` (so `[@this].#(tier=="small")` works on an object).

Anything else raises `UnsupportedPath` instead of silently not matching. The only maintained Python
GJSON library on PyPI (`gjson` 1.2.0, gjson-py) is GPLv3+, which this Apache-2.0 project cannot
ship as a dependency; hence this subset.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

MISSING: Any = object()  # "no result": Go's Result with Exists() == false


class UnsupportedPath(ValueError):
    """A GJSON feature outside the implemented subset."""


def exists(document: bytes | str, path: str) -> bool:
    """`gjson.GetBytes(document, path).Exists()`; invalid JSON never matches (as in the router)."""
    try:
        value = json.loads(document)
    except (ValueError, UnicodeDecodeError):
        return False
    return get(value, path) is not MISSING


def get(value: Any, path: str) -> Any:
    """The value at `path` in decoded JSON, or `MISSING`."""
    if path == "":
        return MISSING
    for part in _split(path):
        if value is MISSING:
            return MISSING
        value = _step(value, part)
    return value


def _split(path: str) -> list[str]:
    """Split on dots outside brackets, parentheses and quotes; keep `\\.` escapes for `_step`."""
    parts, depth, quote, current, i = [], 0, False, [], 0
    while i < len(path):
        ch = path[i]
        if ch == "\\" and i + 1 < len(path):
            current.append(path[i:i + 2])
            i += 2
            continue
        if ch == '"' and depth:
            quote = not quote
        elif not quote and ch in "([":
            depth += 1
        elif not quote and ch in ")]":
            depth -= 1
        if ch == "." and depth == 0 and not quote:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _step(value: Any, part: str) -> Any:
    if part == "@this":
        return value
    if part.startswith("@"):
        raise UnsupportedPath(f"modifier {part!r} is not supported")
    if part.startswith("[") and part.endswith("]"):
        results = [get(value, p.strip()) for p in _split_commas(part[1:-1])]
        return [r for r in results if r is not MISSING]
    if part.startswith("{"):
        raise UnsupportedPath("object multipaths are not supported")
    if part == "#":
        return len(value) if isinstance(value, list) else MISSING
    if part.startswith("#("):
        return _query(value, part)
    if any(c in part for c in "*?|"):
        raise UnsupportedPath(f"wildcards and pipes are not supported: {part!r}")
    key = part.replace("\\.", ".").replace('\\"', '"')
    if isinstance(value, dict):
        return value.get(key, MISSING)
    if isinstance(value, list) and key.isdigit():
        index = int(key)
        return value[index] if index < len(value) else MISSING
    return MISSING


def _split_commas(text: str) -> list[str]:
    parts, depth, quote, current = [], 0, False, []
    for ch in text:
        if ch == '"':
            quote = not quote
        elif not quote and ch in "([":
            depth += 1
        elif not quote and ch in ")]":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


_OPS = ("==", "!=", "<=", ">=", "!%", "=", "<", ">", "%")


def _query(value: Any, part: str) -> Any:
    every = part.endswith(")#")
    body = part[2:-2] if every else part[2:-1]
    if not isinstance(value, list):
        return MISSING
    lhs, op, rhs = _parse_query(body)
    matches = [item for item in value if _matches(item, lhs, op, rhs)]
    if every:
        return matches
    return matches[0] if matches else MISSING


def _parse_query(body: str) -> tuple[str, str | None, str | None]:
    quote = False
    for i, ch in enumerate(body):
        if ch == '"':
            quote = not quote
        if quote:
            continue
        for op in _OPS:
            if body.startswith(op, i):
                return body[:i].strip(), op, body[i + len(op):].strip()
    return body.strip(), None, None


def _matches(item: Any, lhs: str, op: str | None, rhs: str | None) -> bool:
    left = get(item, lhs) if lhs else item
    if left is MISSING:
        return False
    if op is None:
        return True
    assert rhs is not None
    target = json.loads(rhs) if rhs.startswith('"') else rhs
    if isinstance(left, bool):
        want = target == "true"
        return {"==": left == want, "=": left == want, "!=": left != want,
                "<": left < want, "<=": left <= want, ">": left > want,
                ">=": left >= want}.get(op, False)
    if isinstance(left, int | float):
        try:
            number = float(target)
        except ValueError:
            return False
        return _compare(float(left), number, op)
    if isinstance(left, str):
        if op in ("%", "!%"):
            like = fnmatch.fnmatchcase(left, str(target).replace("[", "[[]"))
            return like if op == "%" else not like
        return _compare(left, str(target), op)
    if left is None:
        return (op in ("==", "=") and target == "null") or (op == "!=" and target != "null")
    return False


def _compare(left: Any, right: Any, op: str) -> bool:
    return {"==": left == right, "=": left == right, "!=": left != right, "<": left < right,
            "<=": left <= right, ">": left > right, ">=": left >= right}.get(op, False)
