"""posguard's Prometheus metrics, on an explicit registry (never the global one).

Labels take bounded values only: topic names, reasons, alert types, severities, currencies.
Never an id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.alerts import Alert

# Per-event work is tens of microseconds; merge waits and broker hiccups reach seconds.
_LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events_in = Counter(
            "posguard_events_in", "Input messages consumed", ["topic"], registry=registry
        )
        self.rewinds = Counter(
            "posguard_input_rewinds",
            "Seeks back over messages the consumer skipped (streams/worker/contiguity.py)",
            ["topic"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "posguard_dead_letters", "Inputs sent to the dead-letter topic", ["reason"],
            registry=registry,
        )  # fmt: skip
        self.alerts_raised = Counter(
            "posguard_alerts_raised", "Alerts opened", ["type", "severity"], registry=registry
        )
        self.alerts_resolved = Counter(
            "posguard_alerts_resolved", "Alerts resolved", ["type", "severity"], registry=registry
        )
        self.alerts_open = Gauge(
            "posguard_alerts_open", "Alerts currently open", ["type", "severity"],
            registry=registry,
        )  # fmt: skip
        self.unsettled_minor = Gauge(
            "posguard_unsettled_minor",
            "Approved sales and refunds awaiting settlement, in minor units",
            ["currency"],
            registry=registry,
        )
        self.at_risk_minor = Gauge(
            "posguard_money_at_risk_minor",
            "Money the open alerts are about (unsettled, charged twice, paid without a sale, wrong "
            "pay-outs, excess refunds), in minor units",
            ["currency"],
            registry=registry,
        )
        self.settlement_lag = Gauge(
            "posguard_settlement_watermark_lag_seconds",
            "How far the settlement watermark is behind the transaction watermark (event time)",
            registry=registry,
        )
        self.feed_gap = Gauge(
            "posguard_settlement_feed_gap",
            "1 while a SETTLEMENT_FEED_GAP alert is open",
            registry=registry,
        )
        self.payout_lag = Gauge(
            "posguard_payout_watermark_lag_seconds",
            "How far the pay-out watermark (latest value date) is behind the settlement "
            "watermark, where pay-outs arrive (event time)",
            registry=registry,
        )
        self.payout_stalled = Gauge(
            "posguard_payout_feed_stalled",
            "1 while the pay-out feed, or one merchant's statements, are further behind than "
            "[payouts] feed_gap (their missing pay-outs are not judged meanwhile)",
            registry=registry,
        )
        self.late_statements = Gauge(
            "posguard_payout_statements_late",
            "Merchants whose pay-outs are further behind the other merchants' than [payouts] "
            "feed_gap (a late bank statement)",
            registry=registry,
        )
        self.unpaid_minor = Gauge(
            "posguard_settled_not_paid_minor",
            "Net of settlement batches not paid out yet, in minor units",
            ["currency"],
            registry=registry,
        )
        self.watermark = Gauge(
            "posguard_watermark_seconds",
            "Event-time watermarks (Unix seconds)",
            ["feed"],
            registry=registry,
        )
        self.latency = Histogram(
            "posguard_event_processing_seconds",
            "Wall-clock time from a message reaching the worker until the engine has processed it",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.buffered = Gauge(
            "posguard_merge_buffered",
            "Messages held to merge both topics in event-time order (for the card topic: sales "
            "the card stages hold until every partition's clock is past them)",
            ["topic"],
            registry=registry,
        )
        self.paused = Gauge(
            "posguard_input_paused",
            "Input topic-partitions not fetched while their merge buffer is full (backpressure, "
            "usual while catching up on a backlog)",
            registry=registry,
        )
        self.model_loaded = Gauge(
            "posguard_model_loaded",
            "1 when an isolation-forest model is scoring",
            registry=registry,
        )

        self.consumer_lag = Gauge(
            "posguard_consumer_lag_messages",
            "Messages on the input topics not yet read by this worker (high watermark - position)",
            ["topic"],
            registry=registry,
        )
        self.cases = Gauge(
            "posguard_cases",
            "Alerts this worker holds, by the state of their case",
            ["state"],
            registry=registry,
        )
        self.cases_overdue = Gauge(
            "posguard_cases_overdue",
            "Open alerts whose case is past its SLA and still waiting for an operator",
            ["severity"],
            registry=registry,
        )
        self.case_verdicts = Gauge(
            "posguard_case_verdicts",
            "Closed cases by alert type and the operator's disposition",
            ["type", "disposition"],
            registry=registry,
        )
        self.alert_precision = Gauge(
            "posguard_alert_precision",
            "Production precision per alert type: confirmed / (confirmed + false positive) "
            "among closed cases (absent before the first verdict)",
            ["type"],
            registry=registry,
        )
        self.config_version = Gauge(
            "posguard_config_version",
            "The live configuration version each owned input partition runs (0: the file's)",
            ["partition"],
            registry=registry,
        )
        self.config_late = Counter(
            "posguard_config_versions_late",
            "Configuration versions that arrived after a partition had passed their effective "
            "time (applied there from the next event: the stream then differs from replay)",
            registry=registry,
        )
        self.model_score = Histogram(
            "posguard_model_score",
            "Isolation-forest anomaly score of each approved sale (higher is stranger)",
            buckets=(0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 1.0),
            registry=registry,
        )

    def on_alert(self, alert: Alert, is_new: bool) -> None:
        if alert.status == "OPEN" and is_new:
            self.alerts_raised.labels(alert.type, alert.severity).inc()
        elif alert.status == "RESOLVED":
            self.alerts_resolved.labels(alert.type, alert.severity).inc()
