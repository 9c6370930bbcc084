"""The worker's web side: the dashboard, its JSON API (behind the token), /metrics and /healthz."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.alerts import now_rfc3339
from streams.cases import CaseError
from streams.rules.registry import describe_types
from streams.worker.alertstore import to_json
from streams.worker.case_web import (
    action_from,
    bulk_targets,
    case_summary,
    export_csv,
    query_from,
)
from streams.worker.evidence import alert_evidence
from streams.worker.fleet import fleet_totals, merchant_summaries
from streams.worker.static import content_type, static_file
from streams.worker.websecurity import given_token, token_matches
from streams.worker.worker import StreamWorker

_MAX_PAGE = 500


def authorized(worker: StreamWorker, request: Any) -> bool:
    token = worker.settings.token
    if token is None:
        return True
    return token_matches(given_token(request.headers, request.cookies), token)


def stats_page(worker: StreamWorker) -> dict[str, Any]:
    return {
        **worker.store.stats(),
        "settlement_lag": list(worker.lag_series),
        "dead_letters_per_minute": [tuple(x) for x in worker.dead_series],
        "model": worker.model.status(),
        "auth": worker.settings.token is not None,
    }


def alert_page(worker: StreamWorker, alert_id: str) -> dict[str, Any] | None:
    stored = worker.store.get(alert_id)
    if stored is None:
        return None
    body = to_json(stored, worker.store.sla_s)
    body["evidence"] = alert_evidence(stored.alert, worker.engines(), worker.config)
    return body


def alerts_page(worker: StreamWorker, params: Any) -> dict[str, Any]:
    """One page of the filtered list (``ValueError`` for bad paging or filter values)."""
    limit = min(_MAX_PAGE, max(1, int(params.get("limit", 50))))
    offset = max(0, int(params.get("offset", 0)))
    total, page = worker.store.query(query_from(params, limit, offset))
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "alerts": [to_json(s, worker.store.sla_s) for s in page],
    }


def merchants_page(worker: StreamWorker) -> dict[str, Any]:
    summaries = merchant_summaries(worker.engines(), worker.store.open_alerts())
    return {
        "merchants": [s.to_json() for s in summaries],
        "at_risk": fleet_totals(s.at_risk_minor for s in summaries),
        "unsettled": fleet_totals(s.unsettled_minor for s in summaries),
        "unpaid": fleet_totals(s.unpaid_minor for s in summaries),
        "statements_late": sorted(s.merchant_id for s in summaries if s.statement_late),
    }


def _headers(name: str) -> dict[str, str]:
    # aiohttp refuses a charset inside ``content_type``: give the full header instead.
    return {"Content-Type": content_type(name), "Cache-Control": "no-cache"}


def register_pages(app: faust.App, worker: StreamWorker) -> None:
    """The dashboard, the API and the probes, as Faust web views of ``app``."""

    def denied(view: Any) -> Any:
        return view.json({"error": "token required (POSGUARD_TOKEN)"}, status=401)

    @app.page("/")
    async def dashboard(view: Any, request: Any) -> Any:
        return view.bytes(static_file("index.html"), headers=_headers("index.html"))

    @app.page("/static/{name}")
    async def static(view: Any, request: Any, name: str) -> Any:
        try:
            body = static_file(name)
        except FileNotFoundError:
            return view.notfound()
        return view.bytes(body, headers=_headers(name))

    @app.page("/api/stats")
    async def api_stats(view: Any, request: Any) -> Any:
        if not authorized(worker, request):
            return denied(view)
        return view.json(stats_page(worker))

    @app.page("/api/types")
    async def api_types(view: Any, request: Any) -> Any:
        if not authorized(worker, request):
            return denied(view)
        return view.json({"types": describe_types(worker.config)})

    async def act(view: Any, request: Any, alert_id: str, ack: bool) -> Any:
        if not authorized(worker, request):
            return denied(view)
        try:
            body = await request.json()
            if ack:  # the acknowledgement API from before cases: {by, note}
                body = {"action": "acknowledge", "by": body.get("by"), "comment": body.get("note")}
            done = worker.cases.act(alert_id, action_from(body, now_rfc3339()))
        except (ValueError, AttributeError) as exc:
            message = str(exc) if isinstance(exc, CaseError) else "expected a JSON object"
            return view.json({"error": message}, status=400)
        if done is None:
            return view.json({"error": f"no alert {alert_id}"}, status=404)
        return view.json(done)

    @app.page("/api/alerts/{alert_id}/ack")
    class AckView(faust.web.View):
        async def post(self, request: Any, alert_id: str) -> Any:
            return await act(self, request, alert_id, ack=True)

    @app.page("/api/alerts/{alert_id}/case")
    class CaseView(faust.web.View):
        async def post(self, request: Any, alert_id: str) -> Any:
            return await act(self, request, alert_id, ack=False)

    @app.page("/api/cases/bulk")
    class BulkView(faust.web.View):
        """``{"filter": {status, type, ..., case, owner, overdue}, "action": {action, by, ...}}``:
        one action on every alert the filter matches (up to ``MAX_BULK``)."""

        async def post(self, request: Any) -> Any:
            if not authorized(worker, request):
                return denied(self)
            try:
                body = await request.json()
                action = action_from(body.get("action"), now_rfc3339())
                targets = bulk_targets(worker.store, body.get("filter") or {})
            except (ValueError, AttributeError) as exc:
                message = str(exc) if isinstance(exc, ValueError) else "expected a JSON object"
                return self.json({"error": message}, status=400)
            return self.json(worker.cases.act_on_many(targets, action))

    @app.page("/api/cases")
    async def api_cases(view: Any, request: Any) -> Any:
        if not authorized(worker, request):
            return denied(view)
        return view.json(case_summary(worker.store))

    @app.page("/api/alerts.csv")
    async def api_alerts_csv(view: Any, request: Any) -> Any:
        if not authorized(worker, request):
            return denied(view)
        try:
            found = worker.store.matching(query_from(request.query))
        except ValueError as exc:
            return view.json({"error": str(exc)}, status=400)
        text = export_csv(found, worker.store.sla_s, datetime.now(UTC))
        return view.bytes(
            text.encode(),
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": 'attachment; filename="posguard-alerts.csv"',
            },
        )

    @app.page("/api/alerts")
    async def api_alerts(view: Any, request: Any) -> Any:
        if not authorized(worker, request):
            return denied(view)
        try:
            body = alerts_page(worker, request.query)
        except ValueError as exc:
            return view.json({"error": f"bad filter or paging: {exc}"}, status=400)
        return view.json(body)

    @app.page("/api/alerts/{alert_id}")
    async def api_alert(view: Any, request: Any, alert_id: str) -> Any:
        if not authorized(worker, request):
            return denied(view)
        body = alert_page(worker, alert_id)
        if body is None:
            return view.json({"error": f"no alert {alert_id}"}, status=404)
        return view.json(body)

    @app.page("/api/merchants")
    async def api_merchants(view: Any, request: Any) -> Any:
        if not authorized(worker, request):
            return denied(view)
        return view.json(merchants_page(worker))

    @app.page("/api/config")
    async def api_config(view: Any, request: Any) -> Any:
        if not authorized(worker, request):
            return denied(view)
        return view.json(worker.live.status(worker))

    @app.page("/api/model")
    async def api_model(view: Any, request: Any) -> Any:
        if not authorized(worker, request):
            return denied(view)
        return view.json(worker.model.status())

    @app.page("/metrics")
    async def metrics(view: Any, request: Any) -> Any:
        # Open like /healthz: counts only, no ids (Prometheus scrapes without the token).
        worker.count_arrivals()
        body = generate_latest(worker.registry)
        return view.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz(view: Any, request: Any) -> Any:
        return view.json(
            {
                "status": "ok",
                # Input partitions this worker owns (assigned), and those it has seen input on.
                "partitions": worker.assigned_partitions(),
                "active_partitions": sorted(worker.inputs),
                # Progress at a glance (and cheaper to poll than /metrics).
                "events_in": worker.events_in_total(),
                "model": worker.model.scorer.version if worker.model.scorer else None,
            }
        )
