"""Server metrics kept in memory and written in the Prometheus text format (no client library).

Counters by label, latency histograms, and gauges read at scrape time (queue depth). Thread-safe:
the HTTP handlers and the batcher's worker thread both record here.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels, extra: Iterable[tuple[str, str]] = ()) -> str:
    items = list(labels) + list(extra)
    if not items:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in items)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(x: float) -> str:
    return repr(float(x)) if x != int(x) else str(int(x))


class Histogram:
    """Cumulative buckets, sum and count (Prometheus histogram semantics)."""

    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, b in enumerate(self.buckets):
            if value <= b:
                self.counts[i] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: Labels) -> list[str]:
        out = [f"{name}_bucket{_labels(labels, [('le', _num(b))])} {c}" for b, c in zip(self.buckets, self.counts)]
        out.append(f"{name}_bucket{_labels(labels, [('le', '+Inf')])} {self.count}")
        out.append(f"{name}_sum{_labels(labels)} {self.sum!r}")
        out.append(f"{name}_count{_labels(labels)} {self.count}")
        return out


class Metrics:
    """What /metrics reports: HTTP calls, latency, batches, samples by status, rejections, queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.http: dict[Labels, int] = defaultdict(int)  # (endpoint, code) -> calls
        self.latency: dict[Labels, Histogram] = {}
        self.samples: dict[Labels, int] = defaultdict(int)  # status -> samples
        self.scored = 0  # GRM requests scored
        self.batches = 0
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.backend_seconds = 0.0
        self.rejected: dict[Labels, int] = defaultdict(int)  # reason -> GRM requests
        self.metarm_requests = 0  # GRM requests scored with MetaRM@k
        self.metarm_samples = 0  # samples the meta RM gave a q
        self.metarm_seconds = 0.0
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self._upstream: Callable[[], dict] | None = None

    def upstream(self, read: Callable[[], dict]) -> None:
        """Register the backend's upstream counters (`OpenAIBackend.stats.snapshot`), read at
        scrape time: attempts, retries by reason, calls given up, requests cancelled by deadline."""
        self._upstream = read

    def gauge(self, name: str, help: str, read: Callable[[], float]) -> None:
        """Register a gauge read when /metrics is scraped."""
        self.gauges[name] = (help, read)

    def http_call(self, endpoint: str, code: int, seconds: float) -> None:
        with self._lock:
            self.http[(("endpoint", endpoint), ("code", str(code)))] += 1
            key = (("endpoint", endpoint),)
            self.latency.setdefault(key, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch(self, n_requests: int, seconds: float, statuses: Iterable[str]) -> None:
        with self._lock:
            self.batches += 1
            self.scored += n_requests
            self.batch_size.observe(n_requests)
            self.backend_seconds += seconds
            for s in statuses:
                self.samples[(("status", s),)] += 1

    def metarm(self, n_requests: int, n_samples: int, seconds: float) -> None:
        """One meta RM pass over a batch's samples (MetaRM@k)."""
        with self._lock:
            self.metarm_requests += n_requests
            self.metarm_samples += n_samples
            self.metarm_seconds += seconds

    def reject(self, reason: str, n_requests: int = 1) -> None:
        with self._lock:
            self.rejected[(("reason", reason),)] += n_requests

    @property
    def parse_failure_rate(self) -> float:
        """Share of generated samples that did not give a valid verdict (retries included)."""
        with self._lock:
            total = sum(self.samples.values())
            bad = sum(v for k, v in self.samples.items() if k[0][1] not in ("ok", "recovered"))
        return bad / total if total else 0.0

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        rate = self.parse_failure_rate
        out: list[str] = []

        def family(name: str, kind: str, help: str) -> None:
            out.append(f"# HELP {name} {help}")
            out.append(f"# TYPE {name} {kind}")

        with self._lock:
            family("rewardscale_http_requests_total", "counter", "HTTP calls by endpoint and status code.")
            out += [f"rewardscale_http_requests_total{_labels(k)} {v}" for k, v in sorted(self.http.items())]
            family("rewardscale_http_request_duration_seconds", "histogram", "HTTP call latency by endpoint.")
            for k, h in sorted(self.latency.items()):
                out += h.lines("rewardscale_http_request_duration_seconds", k)
            family("rewardscale_scored_requests_total", "counter", "GRM requests scored (one per query).")
            out.append(f"rewardscale_scored_requests_total {self.scored}")
            family("rewardscale_batches_total", "counter", "Backend calls made by the dynamic batcher.")
            out.append(f"rewardscale_batches_total {self.batches}")
            family("rewardscale_batch_size", "histogram", "GRM requests per backend call.")
            out += self.batch_size.lines("rewardscale_batch_size", ())
            family("rewardscale_backend_seconds_total", "counter", "Seconds the worker spent in backend calls.")
            out.append(f"rewardscale_backend_seconds_total {self.backend_seconds!r}")
            family("rewardscale_metarm_requests_total", "counter", "GRM requests scored with MetaRM@k.")
            out.append(f"rewardscale_metarm_requests_total {self.metarm_requests}")
            family("rewardscale_metarm_samples_total", "counter", "Samples the meta RM scored (q).")
            out.append(f"rewardscale_metarm_samples_total {self.metarm_samples}")
            family("rewardscale_metarm_seconds_total", "counter", "Seconds the worker spent in the meta RM.")
            out.append(f"rewardscale_metarm_seconds_total {self.metarm_seconds!r}")
            family("rewardscale_samples_total", "counter", "GRM samples generated, by parse status.")
            out += [f"rewardscale_samples_total{_labels(k)} {v}" for k, v in sorted(self.samples.items())]
            family("rewardscale_rejected_requests_total", "counter", "GRM requests not scored, by reason.")
            out += [f"rewardscale_rejected_requests_total{_labels(k)} {v}" for k, v in sorted(self.rejected.items())]
        if self._upstream is not None:
            up = self._upstream()
            family("rewardscale_upstream_attempts_total", "counter", "HTTP requests sent to the judge upstream.")
            out.append(f"rewardscale_upstream_attempts_total {up['attempts']}")
            family("rewardscale_upstream_retries_total", "counter", "Upstream requests retried, by reason.")
            out += [
                f"rewardscale_upstream_retries_total{_labels((('reason', r),))} {n}"
                for r, n in sorted(up["retries"].items())
            ]
            family("rewardscale_upstream_gave_up_total", "counter", "Upstream calls given up after every retry.")
            out.append(f"rewardscale_upstream_gave_up_total {up['gave_up']}")
            family("rewardscale_upstream_cancelled_total", "counter", "Upstream calls cancelled by a call deadline.")
            out.append(f"rewardscale_upstream_cancelled_total {up['cancelled']}")
        family("rewardscale_parse_failure_rate", "gauge", "Share of samples without a valid verdict.")
        out.append(f"rewardscale_parse_failure_rate {rate!r}")
        for name, (help, read) in sorted(self.gauges.items()):
            family(name, "gauge", help)
            out.append(f"{name} {_num(read())}")
        return "\n".join(out) + "\n"
