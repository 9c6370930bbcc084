"""The worker's Prometheus gauges, refreshed on a timer from what it holds (the counters and
histograms are fed as events happen, ``metrics.py``)."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from faust.types import TP

from streams.config import SEVERITIES
from streams.engine.views import payout_rule
from streams.worker.case_web import case_summary
from streams.worker.fleet import MerchantSummary, merchant_summaries

if TYPE_CHECKING:
    from streams.worker.worker import StreamWorker


def refresh_gauges(worker: StreamWorker) -> None:
    """Open alerts, money unsettled and at risk, watermarks, settlement lag, feed gap, buffered
    input and consumer lag, from the worker's partitions now."""
    m = worker.metrics
    m.paused.set(len(worker.flow.paused))
    m.alerts_open.clear()
    for (kind, severity), n in worker.store.open_by_type().items():
        m.alerts_open.labels(kind, severity).set(n)
    summaries = merchant_summaries(worker.engines(), worker.store.open_alerts())
    m.unsettled_minor.clear()
    m.at_risk_minor.clear()
    for s in summaries:
        for currency, amount in s.unsettled_minor.items():
            m.unsettled_minor.labels(currency).inc(amount)
        for currency, amount in s.at_risk_minor.items():
            m.at_risk_minor.labels(currency).inc(amount)
    gap = False
    lag = 0.0
    for engine in worker.engines():
        feed = engine.feed
        gap |= feed.gap is not None
        tw, sw = feed.transaction_wm, feed.settlement_wm
        if tw is not None:
            m.watermark.labels("transactions").set(tw / 1e6)
        if sw is not None:
            m.watermark.labels("settlements").set(sw / 1e6)
        if tw is not None and sw is not None:
            lag = max(lag, (tw - sw) / 1e6)
    m.feed_gap.set(1 if gap else 0)
    m.settlement_lag.set(lag)
    _refresh_payout_gauges(worker, summaries)
    worker.lag_series.append((int(time.time()), lag))
    consumer = worker.app.consumer
    for side, name in enumerate(worker.names):
        pipes = [(p, part.pipeline) for p, part in worker.inputs.items()]
        m.buffered.labels(name).set(sum(pipe.buffered(side) for _, pipe in pipes))
        behind = 0
        for p, pipe in pipes:
            hw = consumer.highwater(TP(name, p))
            if hw is not None:
                behind += max(0, hw - pipe.next_offset(side))
        m.consumer_lag.labels(name).set(behind)
    m.buffered.labels(worker.settings.cards_topic).set(worker.cards.buffered())
    _refresh_case_gauges(worker)
    m.config_version.clear()
    for p, part in worker.inputs.items():
        m.config_version.labels(str(p)).set(part.pipeline.version)


def _refresh_payout_gauges(worker: StreamWorker, summaries: list[MerchantSummary]) -> None:
    """The pay-out feed from each partition's rule; money not paid out and late statements
    from the merchants' summaries, which read them from the same rules."""
    m = worker.metrics
    lags: list[int] = []
    stalled = False
    for engine in worker.engines():
        rule = payout_rule(engine)
        if rule is None or rule.feed.payout_wm is None:
            continue  # no pay-out feed (yet): nothing to be behind
        m.watermark.labels("payouts").set(rule.feed.payout_wm / 1e6)
        lag = rule.feed.lag_us
        if lag is not None:
            lags.append(lag)
        stalled |= rule.feed.stalled
    late = sum(1 for s in summaries if s.statement_late)
    unpaid: Counter[str] = Counter()
    for s in summaries:
        unpaid.update(s.unpaid_minor)
    m.payout_lag.set(max(lags, default=0) / 1e6)
    m.payout_stalled.set(1 if stalled or late else 0)
    m.late_statements.set(late)
    m.unpaid_minor.clear()
    for currency, amount in unpaid.items():
        m.unpaid_minor.labels(currency).set(amount)


def _refresh_case_gauges(worker: StreamWorker) -> None:
    m = worker.metrics
    summary = case_summary(worker.store)
    for state, n in summary["states"].items():
        m.cases.labels(state).set(n)
    for severity in SEVERITIES:
        m.cases_overdue.labels(severity).set(summary["overdue"].get(severity, 0))
    m.case_verdicts.clear()
    m.alert_precision.clear()
    for kind, verdicts in summary["precision"].items():
        for disposition, n in verdicts.items():
            if disposition != "precision":
                m.case_verdicts.labels(kind, disposition).set(n)
        if verdicts["precision"] is not None:
            m.alert_precision.labels(kind).set(verdicts["precision"])
