"""The GJSON subset the router conditions use, against GJSON's documented results."""

from __future__ import annotations

import json

import pytest

from kserve_impl import gjson

STATE = json.dumps({"tier": "small", "score": 0.71, "forced": False, "note": None,
                    "name": {"first": "Tom", "a.b": 1},
                    "friends": [{"first": "Dale", "age": 44}, {"first": "Roger", "age": 68}]})


@pytest.mark.parametrize(("path", "found"), [
    ('[@this].#(tier=="small")', True),        # the manifests' Switch conditions
    ('[@this].#(tier=="large")', False),
    ("[@this].#(tier==small)", True),          # a bare word compares as a string
    ("[@this].#(score>0.5)", True),
    ("[@this].#(score<=0.5)", False),
    ("[@this].#(forced==false)", True),
    ("[@this].#(tier%\"sm*\")", True),
    ("[@this].#(tier!%\"sm*\")", False),
    ("[@this].#(missing)", False),
    ("tier", True),
    ("note", True),                            # JSON null exists
    ("nothing", False),
    ("name.first", True),
    ("name.a\\.b", True),
    ("friends.1.first", True),
    ("friends.2", False),
    ("friends.#(age>60).first", True),
    ("friends.#(age>90)", False),
    ("friends.#(age>90)#", True),              # an empty array still exists, as in GJSON
    ("friends.#", True),
])
def test_exists(path: str, found: bool) -> None:
    assert gjson.exists(STATE, path) is found


def test_values() -> None:
    doc = json.loads(STATE)
    assert gjson.get(doc, "friends.#(age>60).first") == "Roger"
    assert gjson.get(doc, "friends.#(age>40)#") == doc["friends"]
    assert gjson.get(doc, "friends.#") == 2


def test_invalid_json_never_matches() -> None:
    assert gjson.exists(b"{not json", "tier") is False


def test_unsupported_syntax_is_refused_not_ignored() -> None:
    with pytest.raises(gjson.UnsupportedPath):
        gjson.exists(STATE, "friends.@reverse")
    with pytest.raises(gjson.UnsupportedPath):
        gjson.exists(STATE, "fr*nds")
