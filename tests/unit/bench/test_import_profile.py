"""The cold-start breakdown: `-X importtime` lines summed per package."""

from __future__ import annotations

from llmops.bench.import_profile import package_costs, parse_importtime

STDERR = """\
import time: self [us] | cumulative | imported package
import time:       120 |        120 |     _io
import time:      3000 |       3000 |       pydantic_core.core_schema
import time:      1000 |       4000 |     pydantic
import time:      2500 |       2500 |       llmops.domain.guard.engine
import time:       500 |       3000 |     llmops.domain.guard
import time:      1500 |       1500 |     llmops.domain.chat
import time:       700 |       8700 |   handler
some other line a child printed
"""


def test_lines_are_parsed_with_their_nesting() -> None:
    imports = parse_importtime(STDERR)
    assert [(i.name, i.self_us, i.depth) for i in imports][-2:] == [
        ("llmops.domain.chat", 1500, 3),
        ("handler", 700, 2),
    ]
    assert len(imports) == 7  # the header and the stray line are skipped


def test_self_time_is_summed_per_package_and_ours_per_subpackage() -> None:
    costs = package_costs(parse_importtime(STDERR))
    by_package = {c.package: c.self_ms for c in costs}
    assert by_package["llmops.domain.guard"] == 3.0
    assert by_package["pydantic_core"] == 3.0
    assert by_package["pydantic"] == 1.0
    assert [c.package for c in costs[:2]] == ["llmops.domain.guard", "pydantic_core"]  # dearest first, then by name
