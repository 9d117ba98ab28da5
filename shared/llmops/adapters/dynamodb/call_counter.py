"""Counts DynamoDB API calls made through a boto3 client: the benchmark's cost driver.

It hooks botocore's `before-call` event, so it sees every operation whatever module issued it
(retries inside one call are not counted: they are not billed as separate requests' writes).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

__all__ = ["WRITE_OPERATIONS", "DynamoCallCounter"]

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})


class DynamoCallCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()

    def attach(self, client: Any) -> DynamoCallCounter:
        client.meta.events.register("before-call.dynamodb", self._on_call)
        return self

    def _on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self._calls[str(model.name)] += 1

    @property
    def calls(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.calls.items() if op in WRITE_OPERATIONS)

    @property
    def reads(self) -> int:
        return sum(n for op, n in self.calls.items() if op not in WRITE_OPERATIONS)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
