"""The Prometheus text format of the metrics ``server/metrics.py`` counts, through
prometheus-client's collectors: imported by the first scrape, not by a start."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from strongroom.server.metrics import BUCKETS, DatabaseCounts, Histogram

CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()


def text_format(snapshots: list[dict[str, Any]], database: DatabaseCounts | None) -> bytes:
    """The text format of the workers' ``snapshots`` added up, and ``database``'s counts."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(snapshots, database))
    return generate_latest(registry)


class _Collector(Collector):
    def __init__(self, snapshots: list[dict[str, Any]], database: DatabaseCounts | None) -> None:
        self._snapshots = snapshots
        self._database = database

    def collect(self) -> Iterable[Metric]:
        requests: dict[tuple[str, str], int] = {}
        latency: dict[str, Histogram] = {}
        flush = Histogram(len(BUCKETS) + 1)
        hits = misses = 0
        for snap in self._snapshots:
            for op, code, n in snap["requests"]:
                requests[op, code] = requests.get((op, code), 0) + n
            for op, data in snap["latency"].items():
                latency.setdefault(op, Histogram(len(BUCKETS) + 1)).add(data)
            flush.add(snap["audit_flush"])
            hits += snap["key_cache"][0]
            misses += snap["key_cache"][1]
        counter = CounterMetricFamily(
            "strongroom_requests",
            "API requests answered, by operation and error code (none: succeeded)",
            labels=["operation", "error_code"],
        )
        for (op, code), n in sorted(requests.items()):
            counter.add_metric([op, code], n)
        yield counter
        histogram = HistogramMetricFamily(
            "strongroom_request_duration_seconds",
            "Time from a request's arrival to its reply, with its audit event written",
            labels=["operation"],
        )
        for op, h in sorted(latency.items()):
            histogram.add_metric([op], _buckets(h), h.total)
        yield histogram
        audit = HistogramMetricFamily(
            "strongroom_audit_flush_seconds", "Time to write and sync one group of audit events"
        )
        audit.add_metric([], _buckets(flush), flush.total)
        yield audit
        yield CounterMetricFamily(
            "strongroom_key_cache_hits", "Key lookups answered by the key cache", value=hits
        )
        yield CounterMetricFamily(
            "strongroom_key_cache_misses", "Key lookups that read the database", value=misses
        )
        if self._database is not None:
            keys = GaugeMetricFamily("strongroom_keys", "KMS keys by key state", labels=["state"])
            for state, n in sorted(self._database.keys_by_state.items()):
                keys.add_metric([state], n)
            yield keys
            yield GaugeMetricFamily("strongroom_grants", "Grants", value=self._database.grants)
            yield GaugeMetricFamily(
                "strongroom_role_sessions",
                "Role sessions not expired",
                value=self._database.sessions,
            )


def _buckets(h: Histogram) -> Sequence[tuple[str, float]]:
    """Cumulative (le, count) pairs, +Inf last."""
    out: list[tuple[str, float]] = []
    running = 0
    for bound, n in zip((*BUCKETS, float("inf")), h.counts, strict=True):
        running += n
        out.append(("+Inf" if bound == float("inf") else repr(bound), running))
    return out
