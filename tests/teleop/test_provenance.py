"""PyPI's `teleop` (another project, pulled in by lerobot[phone]) installed beside us: every
command warns, `teleop doctor` fails the check and says how to fix it. Through the real console
script, with the other package laid out as pip installs it (its package and its dist-info)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from teleop.provenance import DISTRIBUTION, check_provenance

TELEOP = Path(sys.executable).parent / "teleop"  # the console script, as a user runs it


def _foreign_site(root: Path) -> Path:
    """A site folder holding PyPI's teleop 0.1.5 as its wheel installs it (its __init__ reduced to
    what matters here: it is not ours)."""
    pkg = root / "teleop"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("THIS_DIR = __file__  # the phone teleoperation package\n")
    info = root / "teleop-0.1.5.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.4\nName: teleop\nVersion: 0.1.5\nSummary: Turns your phone "
                                   "into a robot arm teleoperation device by leveraging the WebXR API\n")
    (info / "top_level.txt").write_text("teleop\n")
    (info / "RECORD").write_text("")
    return root


def _run(*args: str, site: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if site is not None:  # ahead of site-packages, where pip would have put it
        env["PYTHONPATH"] = str(site)
    return subprocess.run([str(TELEOP), *args], capture_output=True, text=True, timeout=120, env=env)


def test_ours_is_what_python_imports():
    p = check_provenance()
    assert p.ours and p.foreign is None and p.problem() is None
    import teleop

    assert teleop.__distribution__ == DISTRIBUTION


def test_a_foreign_teleop_is_named_by_every_command_and_failed_by_the_doctor(tmp_path):
    site = _foreign_site(tmp_path / "site")
    res = _run("drivers", "list", site=site)
    warning = " ".join(res.stderr.split())
    assert "teleop: WARNING: Python imports `teleop` from" in warning and str(site / "teleop") in warning
    assert "teleop 0.1.5 (Turns your phone" in warning and "lerobot[phone]" in warning
    assert "pip uninstall -y teleop" in warning and "teleop doctor" in warning

    res = _run("doctor", "--json", site=site)
    report = json.loads(res.stdout)
    check = next(c for c in report["checks"] if c["check"] == "teleop package")
    assert res.returncode == 1 and not report["ok"] and check["status"] == "fail"
    assert "not this runtime's package" in check["detail"] and "teleop 0.1.5" in check["detail"]
    assert check["fix"].startswith("pip uninstall -y teleop, then pip install --no-deps -e ")
    assert "lerobot[dataset]" in check["fix"]


def test_a_foreign_dist_that_does_not_shadow_us_is_still_a_warning(tmp_path):
    site = _foreign_site(tmp_path / "site")
    (site / "teleop" / "__init__.py").unlink()
    (site / "teleop").rmdir()  # only its metadata: ours is imported, but removing theirs would remove files
    report = json.loads(_run("doctor", "--json", site=site).stdout)
    check = next(c for c in report["checks"] if c["check"] == "teleop package")
    assert check["status"] == "warn" and "Python still imports ours" in check["detail"]
    res = _run("drivers", "list", site=site)
    assert "WARNING" not in res.stderr
