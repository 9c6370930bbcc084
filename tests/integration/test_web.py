"""The worker's web surface as a browser or a script meets it: the token required everywhere but
``/metrics`` and ``/healthz``, security headers on every response, static files confined to
their folder."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator

import pytest

from streams.worker.static import static_file
from tests.support.brokers import tansu
from tests.support.worker import WorkerProcess, unique_topics

pytestmark = pytest.mark.integration

TOKEN = "tok-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    state = tmp_path_factory.mktemp("web") / "state"
    state.mkdir()
    with tansu() as broker:
        process = WorkerProcess(
            broker, unique_topics(), state, f"web-{uuid.uuid4().hex[:6]}", token=TOKEN
        ).start()
        try:
            yield process
        finally:
            process.stop()


def _request(
    worker: WorkerProcess, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    # http.client sends the path as given (urllib would normalise ``..`` away first).
    conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=10)
    try:
        body = b"{}" if method == "POST" else None
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


_PROTECTED = [
    "/api/alerts",
    "/api/alerts?status=OPEN",
    "/api/alerts/DC-00000000",
    "/api/stats",
    "/api/merchants",
    "/api/model",
    "/api/types",
    "/api/cases",
    "/api/alerts.csv",
    "/api/alerts.csv?type=VELOCITY",
]
_WRONG = {
    "missing": {},
    "wrong-bearer": {"Authorization": "Bearer not-the-token"},
    "same-length-bearer": {"Authorization": "Bearer " + "x" * len(TOKEN)},
    "prefix-bearer": {"Authorization": "Bearer " + TOKEN[:-1]},
    "longer-bearer": {"Authorization": "Bearer " + TOKEN + "x"},
    "token-without-scheme": {"Authorization": TOKEN},
    "basic-scheme": {"Authorization": "Basic " + TOKEN},
    "forged-cookie": {"Cookie": "posguard_token=forged"},
    "empty-cookie": {"Cookie": "posguard_token="},
}


@pytest.mark.parametrize("path", _PROTECTED)
@pytest.mark.parametrize("how", sorted(_WRONG))
def test_missing_wrong_and_forged_tokens_are_refused(
    worker: WorkerProcess, path: str, how: str
) -> None:
    status, _, body = _request(worker, path, _WRONG[how])
    assert status == 401, body
    assert b"token required" in body


@pytest.mark.parametrize(
    "path", ["/api/alerts/DC-0/ack", "/api/alerts/DC-0/case", "/api/cases/bulk"]
)
def test_case_actions_need_the_token_too(worker: WorkerProcess, path: str) -> None:
    status, _, _ = _request(worker, path, method="POST")
    assert status == 401
    status, _, _ = _request(worker, path, {"Cookie": "posguard_token=forged"}, method="POST")
    assert status == 401


def test_a_token_in_the_url_is_not_accepted(worker: WorkerProcess) -> None:
    status, _, _ = _request(worker, f"/api/alerts?token={TOKEN}")
    assert status == 401


@pytest.mark.parametrize(
    "headers", [{"Authorization": f"Bearer {TOKEN}"}, {"Cookie": f"posguard_token={TOKEN}"}]
)
def test_the_right_token_opens_every_api(worker: WorkerProcess, headers: dict[str, str]) -> None:
    for path in _PROTECTED:
        status, _, _ = _request(worker, path, headers)
        assert status == (404 if path.startswith("/api/alerts/") else 200), path


@pytest.mark.parametrize(
    "path",
    ["/", "/static/app.js", "/static/app.css", "/api/alerts", "/metrics", "/healthz", "/nope"],
)
def test_every_response_carries_the_security_headers(worker: WorkerProcess, path: str) -> None:
    _, headers, _ = _request(worker, path)
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_the_dashboard_has_no_inline_script_or_style_for_the_csp_to_block() -> None:
    page = static_file("index.html").decode()
    assert page.count("<script") == page.count('<script src="/static/')
    assert " style=" not in page and " onclick=" not in page
    assert 'style="' not in static_file("app.js").decode()


@pytest.mark.parametrize(
    "path",
    [
        "/static/../streams/worker/app.py",
        "/static/..%2Fapp.py",
        "/static/..%2F..%2Fsettings.py",
        "/static/%2e%2e%2f%2e%2e%2fcli.py",
        "/static/..%5C..%5Capp.py",
        "/static/__init__.py",
        "/static/.hidden.js",
        "/static/app.js%00.py",
        "/static/%2Fetc%2Fpasswd",
        "/static//etc/passwd",
        "/static/..",
        "/static/app.py",
    ],
)
def test_static_files_are_confined_to_their_folder(worker: WorkerProcess, path: str) -> None:
    status, _, body = _request(worker, path)
    assert status in (400, 404), (path, status)
    assert b"import " not in body and b"root:" not in body


def test_shipped_static_files_are_served(worker: WorkerProcess) -> None:
    status, headers, body = _request(worker, "/static/app.js")
    assert status == 200 and body == static_file("app.js")
    assert headers["Content-Type"].startswith("text/javascript")
