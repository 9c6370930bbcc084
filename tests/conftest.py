"""Session-wide checks before any test runs."""

from __future__ import annotations

import pytest

from streams.build_info import stale_modules


def pytest_sessionstart(session: pytest.Session) -> None:
    """Python imports a compiled module before its edited ``.py``: testing a stale build would
    test old code. ``make test`` recompiles first; a bare ``pytest`` after an edit stops here."""
    stale = stale_modules()
    if stale:
        pytest.exit(
            "compiled modules are older than their sources (run `make install`, or "
            f"POSGUARD_PURE_PYTHON=1 make install for no compilation): {', '.join(stale)}",
            returncode=2,
        )
