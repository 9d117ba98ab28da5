"""Fixtures for the workflow tests: see moto_workflow_stack.

One moto world per module (creating the state machines is the slow part: moto parses ASL with
ANTLR); each test starts from the seeded routes, variant weights and alarms.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto_workflow_stack import WorkflowStack, moto_workflow_stack


@pytest.fixture(scope="module")
def _workflow_world() -> Iterator[WorkflowStack]:
    yield from moto_workflow_stack()


@pytest.fixture
def workflow_stack(_workflow_world: WorkflowStack) -> WorkflowStack:
    _workflow_world.reset()
    return _workflow_world
