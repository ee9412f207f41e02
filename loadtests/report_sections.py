"""Sections that later steps add to a finished report (experiments, the decision record).

A section sits between its own start and end markers, so adding it again replaces it (a re-run
never duplicates it); a new one goes in before `anchor`, or at the end.
"""

from __future__ import annotations


def replace_section(text: str, block: str, anchor: str, start: str, end: str) -> str:
    """`text` with the section between `start` and `end` replaced by `block` (which carries
    both markers), or `block` inserted before `anchor`, or appended."""
    if start in text:
        head, rest = text.split(start, 1)
        return head + block + rest.split(end, 1)[1]
    if anchor in text:
        return text.replace(anchor, block + anchor, 1)
    return text + block
