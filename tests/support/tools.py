"""External tools the deploy and browser tests run for real."""

from __future__ import annotations

import os
import shutil

import pytest


def require(tool: str) -> str:
    """The tool's path; locally a missing tool skips with the reason, under ``CI=true`` it fails
    (``make test`` installs the Debian packages)."""
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (make test installs it from Debian's packages)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
