"""Deploy checks run the real tools; locally a missing tool skips with the reason, under
``CI=true`` it fails (``make test`` installs them)."""

from __future__ import annotations

import os
import shutil

import pytest


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (make test installs it from Debian's packages)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
