"""Item-level rollback for moto's DynamoDB TransactWriteItems, installed by the local stack.

moto 5 makes every TransactWriteItems deep-copy each table the transaction touches, so it can roll
back on a failed condition. That costs time proportional to everything stored in those tables
(about 27 us per item here): the quota and audit tables grow with every request, so a local stack
under sustained load gets slower and slower, and the benchmarks would measure moto's copying
rather than the gateway. Real DynamoDB transactions do not slow down as a table grows.

`install()` keeps moto's transaction semantics but snapshots only the items the transaction names,
and restores exactly those if it fails: while the original method runs, `table_class.__deepcopy__`
returns the table itself, so the whole-table backup becomes free and its rollback a no-op.
`MotoService` installs it; the benchmark report says that it is in use.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["install"]

_lock = threading.Lock()
_installed: list[Callable[[], None]] = []


def _key(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any] | None:
    if op_type == "Put":
        attrs = op.get("Item") or {}
        if table.hash_key_attr not in attrs:
            return None
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            if table.range_key_attr not in attrs:
                return None
            key[table.range_key_attr] = attrs[table.range_key_attr]
        return key
    key_value = op.get("Key")
    return dict(key_value) if isinstance(key_value, dict) else None


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], Any]] | None:
    """(table, key, original attributes or None) per item written; None if any key is unclear."""
    snapshots: list[tuple[str, dict[str, Any], Any]] = []
    for entry in transact_items:
        for op_type, op in entry.items():
            table_name = op.get("TableName") if isinstance(op, dict) else None
            table = backend.tables.get(table_name) if table_name else None
            if table is None or op_type == "ConditionCheck":
                continue
            key = _key(table, op_type, op)
            if key is None:
                return None
            try:
                current = backend.get_item(table_name, key)
            except Exception:  # unexpected key shapes: fall back to moto's own whole-table backup
                return None
            original = copy.deepcopy(current.to_json()["Attributes"]) if current is not None else None
            snapshots.append((str(table_name), key, original))
    return snapshots


def _restore(backend: Any, snapshots: list[tuple[str, dict[str, Any], Any]]) -> None:
    for table_name, key, original in reversed(snapshots):
        if original is None:
            backend.delete_item(table_name, key)
        else:
            backend.put_item(table_name, original)


def install() -> Callable[[], None]:
    """Patches moto's DynamoDB backend in this process; returns a function that undoes it."""
    import moto.dynamodb.models as backend_module  # noqa: PLC0415 - tooling, imported on demand
    import moto.dynamodb.models.table as table_module  # noqa: PLC0415

    # Any: the patch replaces attributes that moto's own type hints declare as fixed methods.
    backend_class: Any = backend_module.DynamoDBBackend
    table_class: Any = table_module.Table

    with _lock:
        if _installed:
            return _installed[0]
        original = backend_class.transact_write_items
        call_lock = threading.RLock()

        def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
            snapshots = _snapshot(self, transact_items)
            if snapshots is None:
                original(self, transact_items)
                return
            with call_lock:
                table_class.__deepcopy__ = lambda table, memo: table
                try:
                    original(self, transact_items)
                except BaseException:
                    _restore(self, snapshots)
                    raise
                finally:
                    del table_class.__deepcopy__

        backend_class.transact_write_items = transact_write_items

        def uninstall() -> None:
            with _lock:
                backend_class.transact_write_items = original
                _installed.clear()

        _installed.append(uninstall)
        return uninstall
