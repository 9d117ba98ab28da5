"""The local stack's CloudWatch Logs to CloudWatch Metrics: EMF records captured from the handlers'
stdout, kept as metric samples.

In Lambda, a function's stdout goes to CloudWatch Logs, which turns every EMF record (a JSON line
with an `_aws` key) into metric datapoints. Locally the handlers run in the front-door processes;
`install_emf_capture` replaces those processes' stdout with a writer that appends each EMF line to
`<state-dir>/metrics/emf.jsonl` (one file for every front-door process; a line is one `os.write`
on an O_APPEND descriptor, so lines from several processes never interleave) and passes every
other line through. `--emit-metrics` echoes the EMF lines too, as before.

`MetricStore` reads that file (incrementally, from where it stopped) into samples per metric and
dimension set, which the alarm evaluator (`llmops.local.alarms`) and the dashboard renderer query.
The records are parsed as CloudWatch does: each metric directive's dimension sets each make a
metric, values may be arrays, the timestamp is `_aws.Timestamp` (ms).
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "EMF_ECHO_VAR",
    "EMF_FILE_VAR",
    "EmfStdout",
    "MetricKey",
    "MetricStore",
    "Sample",
    "capture_from_environment",
    "emf_file",
    "install_emf_capture",
    "parse_emf",
]

# Set by the local stack in the environment the front-door processes inherit.
EMF_FILE_VAR = "LLMOPS_LOCAL_EMF_FILE"
EMF_ECHO_VAR = "LLMOPS_LOCAL_EMF_ECHO"


_MAX_RECORDS = 200_000  # a workstation's worth; the metrics themselves are kept whole


def emf_file(state_dir: Path) -> Path:
    return state_dir / "metrics" / "emf.jsonl"


@dataclass(frozen=True, slots=True)
class MetricKey:
    namespace: str
    metric: str
    dimensions: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, namespace: str, metric: str, dimensions: Mapping[str, str] | Iterable[tuple[str, str]]) -> MetricKey:
        items = dimensions.items() if isinstance(dimensions, Mapping) else dimensions
        return cls(namespace, metric, frozenset(items))


@dataclass(frozen=True, slots=True)
class Sample:
    key: MetricKey
    timestamp_s: float
    value: float


def parse_emf(record: Mapping[str, Any]) -> list[Sample]:
    """The samples of one EMF record (empty for anything that is not one)."""
    meta = record.get("_aws")
    if not isinstance(meta, Mapping):
        return []
    timestamp_s = float(meta.get("Timestamp", 0)) / 1000
    samples: list[Sample] = []
    for directive in meta.get("CloudWatchMetrics", []):
        namespace = str(directive.get("Namespace", ""))
        for definition in directive.get("Metrics", []):
            name = str(definition.get("Name", ""))
            raw = record.get(name)
            values = raw if isinstance(raw, list) else [raw]
            numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            for dimension_set in directive.get("Dimensions", []):
                dims = {str(d): str(record.get(d, "")) for d in dimension_set}
                key = MetricKey.of(namespace, name, dims)
                samples.extend(Sample(key, timestamp_s, value) for value in numbers)
    return samples


class EmfStdout(io.TextIOBase):
    """A stdout that sends EMF lines to `path` (and to the real stdout when `echo`) and every other
    line to the real stdout. Lines are assembled per thread: the gateway and authorizer handlers
    print from their own threads."""

    def __init__(self, target: TextIO, path: Path, *, echo: bool) -> None:
        self._target = target
        self._path = path
        self._echo = echo
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        pending: str = getattr(self._local, "pending", "") + text
        *lines, rest = pending.split("\n")
        self._local.pending = rest
        for line in lines:
            self._line(line)
        return len(text)

    def _line(self, line: str) -> None:
        if line.startswith('{"_aws"'):
            os.write(self._fd, (line + "\n").encode())
            if not self._echo:
                return
        self._target.write(line + "\n")
        self._target.flush()

    def flush(self) -> None:
        self._target.flush()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._target.encoding


def install_emf_capture(path: Path, *, echo: bool = False) -> None:
    """Routes this process's EMF lines to `path` (idempotent)."""
    if not isinstance(sys.stdout, EmfStdout):
        sys.stdout = EmfStdout(sys.stdout, path, echo=echo)


def capture_from_environment() -> None:
    """`install_emf_capture` as the local stack configured it (a no-op outside the local stack)."""
    path = os.environ.get(EMF_FILE_VAR)
    if path:
        install_emf_capture(Path(path), echo=os.environ.get(EMF_ECHO_VAR) == "1")


class MetricStore:
    """Samples per metric, sorted by time, read from an EMF file (`refresh` reads what was appended)."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._offset = 0
        self._series: dict[MetricKey, tuple[list[float], list[float]]] = {}
        # The per-request and per-rating records (the `record` property), what Logs Insights queries.
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def refresh(self) -> int:
        """Reads the lines appended since the last call; returns how many samples were added."""
        if self._path is None or not self._path.exists():
            return 0
        with self._path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next refresh
        self._offset += end
        added = 0
        for raw in chunk[:end].splitlines():
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            samples = parse_emf(record)
            self.add(samples)
            if "record" in record and len(self.records) < _MAX_RECORDS:
                self.records.append(record)
            added += len(samples)
        return added

    def add(self, samples: Iterable[Sample]) -> None:
        with self._lock:
            for sample in samples:
                times, values = self._series.setdefault(sample.key, ([], []))
                at = len(times)
                if times and sample.timestamp_s < times[-1]:
                    at = bisect_left(times, sample.timestamp_s)
                times.insert(at, sample.timestamp_s)
                values.insert(at, sample.value)

    def values(self, key: MetricKey, start_s: float, end_s: float) -> list[float]:
        """The samples of `key` with start <= timestamp < end."""
        with self._lock:
            series = self._series.get(key)
            if series is None:
                return []
            times, values = series
            return values[bisect_left(times, start_s) : bisect_left(times, end_s)]

    def prune(self, before_s: float) -> int:
        """Drops samples older than `before_s` (the evaluator keeps what its longest alarm reads);
        returns how many were dropped."""
        dropped = 0
        with self._lock:
            for key, (times, values) in list(self._series.items()):
                cut = bisect_left(times, before_s)
                if cut:
                    del times[:cut], values[:cut]
                    dropped += cut
                if not times:
                    del self._series[key]
        return dropped

    def keys(self) -> list[MetricKey]:
        with self._lock:
            return list(self._series)

    def span(self) -> tuple[float, float] | None:
        """The first and last sample times, if any."""
        with self._lock:
            firsts = [t[0] for t, _ in self._series.values() if t]
            lasts = [t[-1] for t, _ in self._series.values() if t]
        return (min(firsts), max(lasts)) if firsts else None
