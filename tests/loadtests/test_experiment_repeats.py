"""Experiments repeated: figures become medians with their range (loadtests.experiment_repeats),
and the report shows the range and explains revision names."""

from __future__ import annotations

from loadtests.experiment_repeats import combine
from loadtests.experiment_report import REVISION_NOTE, _value
from loadtests.tables import server_ms


def _result(restore: float, failed: int) -> dict:
    return {"experiment": "rollback", "stack": "kserve",
            "figures": {"time_to_restore_s": restore, "failed": failed, "detected_by": "x",
                        "time_to_detect_s": None}}


def test_combined_figures_are_medians_with_range():
    combined = combine([_result(4.0, 3), _result(1.0, 9), _result(2.5, 6)])
    assert combined["figures"]["time_to_restore_s"] == 2.5
    assert combined["figures"]["failed"] == 6
    assert combined["figures"]["detected_by"] == "x"  # not a number: the first repeat's
    assert combined["figures_range"]["time_to_restore_s"] == {"median": 2.5, "min": 1.0,
                                                              "max": 4.0, "n": 3}
    assert combined["repeat_count"] == 3 and len(combined["repeats"]) == 3
    assert _value(combined, "time_to_restore_s", " s") == "2.5 s (range 1.0 s–4.0 s, n=3)"


def test_one_repeat_is_unchanged():
    one = _result(4.0, 3)
    assert combine([one]) is one
    assert _value(one, "time_to_restore_s", " s") == "4.0 s"


def test_revision_note_names_what_the_hash_covers():
    assert "shared_pipeline/revision.py" in REVISION_NOTE and "generate.engine" in REVISION_NOTE


def test_server_quantile_above_the_client_max_is_marked_a_bucket_bound():
    assert server_ms(18.0, 13_200.0) == "18,000 (bucket bound; client max 13,200)"
    assert server_ms(12.0, 13_200.0) == "12,000"
    assert server_ms(None, 13_200.0) == "n/a"
