"""Which ``teleop`` package Python imports, and whether it is this runtime's.

The distribution is named ``dexteleop``; the import package is ``teleop``. PyPI's ``teleop`` is
another project (a phone/WebXR teleoperation package that ``lerobot[phone]`` and ``lerobot[all]``
depend on) with the same import name. Installed beside us it either shadows our package (ours
installed editable: its ``teleop/__init__.py`` runs, our submodules still load through the
editable finder) or overwrites files of ours (both installed as wheels). Either way the runtime
half-works, so every command checks this first and ``teleop doctor`` explains it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib import metadata

__all__ = ["DISTRIBUTION", "FOREIGN_NAME", "Provenance", "check_provenance", "imports_ours", "warning_line"]

DISTRIBUTION = "dexteleop"
FOREIGN_NAME = "teleop"  # the PyPI project that shares our import name
_OURS = Path(__file__).resolve().parent  # this file is ours whichever package it was loaded under


@dataclass(frozen=True)
class Provenance:
    ours: bool  # `import teleop` gives this runtime's package
    imported_from: str  # where Python's `teleop` package comes from
    foreign: str | None  # "teleop 0.1.5 (summary)" when a distribution of that name is installed
    editable: bool  # dexteleop is installed editable (make install)

    def problem(self) -> str | None:
        """What is wrong, in one paragraph, or None."""
        if self.ours and not self.foreign:
            return None
        who = self.foreign or "another package"
        if not self.ours:
            return (f"Python imports `teleop` from {self.imported_from}, which is not this runtime's package "
                    f"({_OURS}) but {who}: a different project that uses the same import name (lerobot[phone] "
                    "and lerobot[all] install it). Commands may fail or act strangely.")
        return (f"{who} is installed in this environment: a different project with the same import name "
                "(lerobot[phone] and lerobot[all] install it). Python still imports ours here, but installing or "
                "removing either can break the other.")

    def fix(self) -> str:
        reinstall = (f"pip install --no-deps -e {_OURS.parent}" if self.editable
                     else f"pip install --force-reinstall --no-deps {DISTRIBUTION}")
        return (f"pip uninstall -y {FOREIGN_NAME}, then {reinstall}; install LeRobot as lerobot[dataset] "
                "(or pip install 'dexteleop[lerobot]'), not lerobot[phone] or lerobot[all]")


def _in_this_tree(dist: metadata.Distribution) -> bool:
    """This source tree's own metadata (an egg-info beside it, or an editable install of it, also
    under the old name "teleop"): the same files, not another project."""
    base = Path(str(dist.locate_file(""))).resolve()
    return base == _OURS.parent or _OURS.parent.as_uri() in (dist.read_text("direct_url.json") or "")


def _foreign() -> str | None:
    from importlib import metadata  # not at import: it costs every command ~10-40 ms

    for dist in metadata.distributions(name=FOREIGN_NAME):
        if _in_this_tree(dist):
            continue
        summary = (dist.metadata.get("Summary") or "").strip()
        summary = summary if len(summary) <= 120 else summary[:117] + "..."
        return f"{FOREIGN_NAME} {dist.version}" + (f" ({summary})" if summary else "")
    return None


def _editable() -> bool:
    """Run from a source tree (make install: editable), not from a wheel in site-packages."""
    import sysconfig

    installed = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    return _OURS.parent not in installed


def _imported_from() -> Path | None:
    origin = getattr(sys.modules.get("teleop"), "__file__", None)
    return Path(origin).resolve().parent if origin else None


def imports_ours() -> bool:
    """The cheap half of :func:`check_provenance`: `import teleop` gives this runtime's package."""
    return _imported_from() == _OURS and getattr(sys.modules.get("teleop"), "__distribution__", None) == DISTRIBUTION


def check_provenance() -> Provenance:
    here = _imported_from()
    return Provenance(ours=imports_ours(), imported_from=str(here or "a namespace package"), foreign=_foreign(),
                      editable=_editable())


def warning_line(p: Provenance) -> str | None:
    """The line every command prints to stderr when ``teleop`` is not ours (None when it is)."""
    if p.ours:
        return None
    return f"teleop: WARNING: {p.problem()} Fix: {p.fix()}. (`teleop doctor` shows this too.)"
