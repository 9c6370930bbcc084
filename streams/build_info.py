"""Which build is running: the detection path compiled by mypyc (``setup.py``), or pure Python.

A compiled module is a C extension beside its ``.py`` source, and Python imports the extension
first. In a source checkout an edited ``.py`` is therefore ignored until it is compiled again
(``make install`` does that); ``stale_modules`` finds such modules so the tests can refuse to run
on them and ``posguard --version`` can say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

_PACKAGES = ("streams", "models")


@dataclass(frozen=True, slots=True)
class CompiledModule:
    name: str
    extension: Path
    source: Path

    @property
    def stale(self) -> bool:
        """The source changed after the extension was built (a checkout's file times)."""
        return self.source.stat().st_mtime > self.extension.stat().st_mtime


def _base(root: Path | None) -> Path:
    return Path(__file__).resolve().parent.parent if root is None else root


def compiled_modules(root: Path | None = None) -> list[CompiledModule]:
    """Every module of the packages under ``root`` (default: where they are installed) that is a
    C extension with its ``.py`` source beside it, by module name."""
    base = _base(root)
    found = []
    for package in _PACKAGES:
        for suffix in EXTENSION_SUFFIXES:
            for extension in (base / package).rglob(f"*{suffix}"):
                source = extension.with_name(extension.name[: -len(suffix)] + ".py")
                if source.is_file():
                    module = source.relative_to(base).with_suffix("")
                    found.append(CompiledModule(".".join(module.parts), extension, source))
    return sorted(found, key=lambda m: m.name)


def _stale(base: Path, modules: list[CompiledModule]) -> list[str]:
    """Those of ``modules`` older than their sources, in a source checkout (beside ``setup.py``);
    an installed wheel's file times say nothing, so there the answer is always empty."""
    if not (base / "setup.py").is_file():
        return []
    return [m.name for m in modules if m.stale]


def stale_modules(root: Path | None = None) -> list[str]:
    base = _base(root)
    return _stale(base, compiled_modules(base))


def describe_build(root: Path | None = None) -> str:
    base = _base(root)
    modules = compiled_modules(base)
    if not modules:
        return "pure Python"
    text = f"mypyc-compiled detection path, {len(modules)} modules"
    stale = _stale(base, modules)
    if stale:
        text += f"; older than their sources, run `make install`: {', '.join(stale)}"
    return text
