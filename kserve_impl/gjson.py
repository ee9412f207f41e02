"""Switch conditions as KServe's router evaluates them, for the one GJSON form the manifests use.

The router picks a Switch step with `gjson.GetBytes(input, condition).Exists()`
(github.com/tidwall/gjson). `manifests/kserve/inferencegraph.yaml` tests one top-level field of
the pipeline state, `[@this].#(tier=="small")`: `[@this]` wraps the document in a one-element
array and `#(key==value)` returns that element when its `key` equals `value`, so the condition
exists exactly when the document's `key` equals `value`. This module evaluates that form only:

    [@this].#(<key>==<value>)

`<key>` is one top-level key; `<value>` is a quoted string, a number, `true`/`false`, or a bare
word (compared as text). The comparison is GJSON's `queryMatches`: a string field against the
text, a number field against the number, a boolean field against `true`/`false`; a field of any
other type (null, object, array) never matches, nor does a document that is not a JSON object.
Anything else raises `UnsupportedPath` when the graph is loaded, not a silent "no match".

Why it is written here: the only maintained Python GJSON library on PyPI (`gjson` 1.2.0,
gjson-py) is GPLv3+, which this Apache-2.0 project cannot ship as a dependency.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_FORM = re.compile(r"^\[@this\]\.#\((?P<key>[A-Za-z0-9_-]+)==(?P<value>.+)\)$")


class UnsupportedPath(ValueError):
    """A condition outside the one form evaluated here."""


@dataclass(frozen=True)
class Condition:
    """`[@this].#(key==value)`, parsed."""

    key: str
    value: str  # the right-hand side as GJSON compares it: quotes removed, escapes decoded

    def matches(self, document: Any) -> bool:
        """Whether the condition exists in decoded JSON `document`."""
        if not isinstance(document, dict) or self.key not in document:
            return False
        field = document[self.key]
        if isinstance(field, bool):  # before numbers: a JSON boolean is not a number
            return self.value == ("true" if field else "false")
        if isinstance(field, int | float):
            return float(field) == _parse_float(self.value)
        if isinstance(field, str):
            return field == self.value
        return False


def parse(condition: str) -> Condition:
    """The condition, or `UnsupportedPath` naming it."""
    match = _FORM.match(condition)
    if match is None:
        raise UnsupportedPath(f"condition {condition!r} is not of the form "
                              f"'[@this].#(<key>==<value>)', the one evaluated here")
    value = match["value"]
    if len(value) > 2 and value[0] == value[-1] == '"':
        try:
            value = json.loads(value)
        except ValueError:
            raise UnsupportedPath(f"condition {condition!r}: {value} is not a JSON string") \
                from None
    return Condition(match["key"], value)


def exists(document: bytes | str, condition: str) -> bool:
    """`gjson.GetBytes(document, condition).Exists()`; invalid JSON never matches."""
    try:
        decoded = json.loads(document)
    except (ValueError, UnicodeDecodeError):
        return False
    return parse(condition).matches(decoded)


def _parse_float(text: str) -> float:
    """Go's `strconv.ParseFloat` as GJSON uses it: text that is no number compares as 0."""
    try:
        return float(text)
    except ValueError:
        return 0.0
