"""The one GJSON form the router conditions use, against GJSON's documented results."""

from __future__ import annotations

import json

import pytest

from kserve_impl import gjson

STATE = json.dumps({"tier": "small", "score": 0.71, "forced": False, "note": None,
                    "docs": [{"id": "d1"}], "pipeline": {"tier": "large"}})


@pytest.mark.parametrize(("condition", "found"), [
    ('[@this].#(tier=="small")', True),        # the manifests' Switch conditions
    ('[@this].#(tier=="large")', False),
    ("[@this].#(tier==small)", True),          # a bare word compares as text
    ("[@this].#(score==0.71)", True),          # a number field compares as a number
    ('[@this].#(score=="0.71")', True),        # ... whatever the quoting, as in GJSON
    ("[@this].#(score==0.7)", False),
    ("[@this].#(forced==false)", True),        # a boolean field against true/false
    ("[@this].#(forced==true)", False),
    ('[@this].#(forced=="false")', True),
    ("[@this].#(note==null)", False),          # null, objects, arrays never equal
    ("[@this].#(docs==d1)", False),
    ('[@this].#(missing=="small")', False),
])
def test_exists(condition: str, found: bool) -> None:
    assert gjson.exists(STATE, condition) is found


def test_only_a_json_object_can_match() -> None:
    assert gjson.exists(b"{not json", '[@this].#(tier=="small")') is False
    assert gjson.exists(b'[{"tier": "small"}]', '[@this].#(tier=="small")') is False
    assert gjson.exists(b'"small"', '[@this].#(tier=="small")') is False


def test_quoted_values_are_json_strings() -> None:
    assert gjson.parse('[@this].#(tier=="a\\"b")') == gjson.Condition("tier", 'a"b')
    assert gjson.exists(json.dumps({"tier": "a)b"}), '[@this].#(tier=="a)b")') is True


@pytest.mark.parametrize("condition", [
    "tier", "pipeline.tier", "[@this].#(score>0.5)", '[@this].#(tier!="small")',
    '[@this].#(pipeline.tier=="large")', '#(tier=="small")', "[@this].#(tier)", ""])
def test_other_gjson_is_refused_not_ignored(condition: str) -> None:
    with pytest.raises(gjson.UnsupportedPath):
        gjson.parse(condition)
