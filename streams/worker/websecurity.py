"""The dashboard's and API's protection: the token check and the headers every response gets."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Final

SECURITY_HEADERS: Final = {
    # Scripts and styles only from the worker's own files (no inline script, no inline style
    # attribute), nothing loaded from elsewhere, no plugins, no framing by another site.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def token_matches(given: str, token: str) -> bool:
    """Compare in constant time, lengths included: both sides are hashed first, so neither the
    comparison nor an early length mismatch tells how much of a guess was right."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(token.encode()).digest()
    )


def given_token(headers: Any, cookies: Any) -> str:
    """The token a request carries: ``Authorization: Bearer`` (API clients) or the dashboard's
    cookie. Never a query parameter: URLs end up in logs, histories and proxies."""
    header = str(headers.get("Authorization", ""))
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return str(cookies.get("posguard_token", ""))


async def _add_security_headers(request: Any, response: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def harden(web_app: Any) -> None:
    """Give every response of the aiohttp application the security headers (errors and 404s
    too)."""
    web_app.on_response_prepare.append(_add_security_headers)
