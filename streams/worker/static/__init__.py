"""The dashboard's files (HTML, JavaScript, CSS), served by the worker itself: no build step and
no CDN."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Final

_TYPES: Final = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
}


@cache
def static_file(name: str) -> bytes:
    """Bytes of a dashboard file; ``FileNotFoundError`` for anything not shipped."""
    if "/" in name or name.startswith(".") or name.rsplit(".", 1)[-1] not in _TYPES:
        raise FileNotFoundError(name)
    resource = files(__package__).joinpath(name)
    if not resource.is_file():
        raise FileNotFoundError(name)
    return resource.read_bytes()


def content_type(name: str) -> str:
    return _TYPES[name.rsplit(".", 1)[-1]]
