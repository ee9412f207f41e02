"""The decision record: a route's inventory plus a `twinserve compare` run give a choice of
serving layer, the alternative rejected with its numbers, and the seed page's four checks.

    inventory.py  the YAML a team writes (validated; placeholders and unknown values refused)
    evidence.py   the report dir read into typed figures, each with the key path it came from
    rules.py      requirements, fit, rollback units, on-call view, the decision and its checks
    record.py     decision.md and decision.json, and the section in report.md / index.html
"""

from loadtests.decision.record import add_decision_to_report, write_record

__all__ = ["add_decision_to_report", "write_record"]
