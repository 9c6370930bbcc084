"""Which build runs, and when a compiled module is older than its source (build_info)."""

from __future__ import annotations

import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from streams.build_info import compiled_modules, describe_build, stale_modules

SUFFIX = EXTENSION_SUFFIXES[0]


def _tree(root: Path, checkout: bool) -> None:
    """streams/engine/core compiled, streams/cli not, models/features compiled."""
    for name in ("streams/engine/core", "streams/cli", "models/features"):
        source = root / f"{name}.py"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("")
    for name in ("streams/engine/core", "models/features"):
        (root / f"{name}{SUFFIX}").write_bytes(b"")
    (root / f"streams/posguard__mypyc{SUFFIX}").write_bytes(b"")  # the shared library: no source
    if checkout:
        (root / "setup.py").write_text("")


def _age(path: Path, seconds: float) -> None:
    stat = path.stat()
    os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


def test_compiled_modules_are_extensions_with_their_source_beside_them(tmp_path: Path) -> None:
    _tree(tmp_path, checkout=True)
    names = [m.name for m in compiled_modules(tmp_path)]
    assert names == ["models.features", "streams.engine.core"]
    assert describe_build(tmp_path) == "mypyc-compiled detection path, 2 modules"
    assert stale_modules(tmp_path) == []


def test_an_edited_source_makes_its_module_stale_in_a_checkout(tmp_path: Path) -> None:
    _tree(tmp_path, checkout=True)
    _age(tmp_path / f"streams/engine/core{SUFFIX}", 60)
    assert stale_modules(tmp_path) == ["streams.engine.core"]
    assert describe_build(tmp_path).endswith(
        "older than their sources, run `make install`: streams.engine.core"
    )


def test_an_installed_wheel_s_file_times_are_not_read_as_staleness(tmp_path: Path) -> None:
    _tree(tmp_path, checkout=False)
    _age(tmp_path / f"streams/engine/core{SUFFIX}", 60)
    assert stale_modules(tmp_path) == []


def test_no_extension_is_pure_python(tmp_path: Path) -> None:
    (tmp_path / "streams").mkdir()
    (tmp_path / "streams" / "cli.py").write_text("")
    assert compiled_modules(tmp_path) == []
    assert describe_build(tmp_path) == "pure Python"
