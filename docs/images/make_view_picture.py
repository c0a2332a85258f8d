"""Regenerate docs/images/view.png, the picture of the headless view in docs/viewing.md.

It is the project's own data: the bundled demo session (`sim_demo`: the humanoid in MuJoCo,
synthetic hands and wrists picking up the bottle) runs for 7.5 s with `teleop run --rerun
OUT.rrd`, which ends while the right hand carries the bottle; rerun's own viewer opens the file
under a virtual display and takes the screenshot. A run whose last moment does not show the
bottle lifted in a hand with contact forces (a loaded machine can make the session hold) is run
again, up to three times.

    .venv/bin/python docs/images/make_view_picture.py

Needs `xvfb-run` and a software renderer for the viewer (Debian: `apt-get install xvfb
mesa-vulkan-drivers`). Not part of the tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "view.png"
SECONDS = "7.5"  # the script's carry phase: the bottle up in the right hand
WINDOW = (1600, 1000)  # logical points; the viewer renders at twice that, scaled back here
MAX_BYTES = 400_000


def main() -> int:
    if shutil.which("xvfb-run") is None:
        print("needs xvfb-run (apt-get install xvfb mesa-vulkan-drivers)", file=sys.stderr)
        return 2
    from teleop.bus.endpoints import free_port_base
    from teleop.view.sink import rerun_executable

    teleop = Path(sys.executable).parent / "teleop"
    with tempfile.TemporaryDirectory(prefix="teleop-view-picture-") as tmp:
        rrd = Path(tmp) / "demo.rrd"
        for attempt in range(3):
            rrd.unlink(missing_ok=True)
            cmd = [str(teleop), "run", "sim_demo", "--seconds", SECONDS, "--rerun", str(rrd), "--no-keys", "--quiet",
                   "--port-base", str(free_port_base(23400))]
            subprocess.run(cmd, cwd=tmp, check=True, stdout=subprocess.DEVNULL)  # the episode goes to tmp too
            why = _not_showing(rrd)
            if not why:
                break
            print(f"attempt {attempt + 1}: {why}; again", file=sys.stderr)
        else:
            print("the session never reached the carry phase; is the machine very busy?", file=sys.stderr)
            return 1
        raw = Path(tmp) / "raw.png"
        subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 7000x4400x24",  # the pointer sits off the window
                        str(rerun_executable()), str(rrd), "--window-size", f"{WINDOW[0]}x{WINDOW[1]}",
                        "--screenshot-to", str(raw)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=300)
        _shrink(raw, OUT)
    print(f"{OUT} ({OUT.stat().st_size // 1000} KB)")
    return 0


def _not_showing(rrd: Path) -> str:
    """What the recording's last moment lacks for the picture ("" when it shows it all)."""
    from rerun.chunk import RrdReader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a live view's file has no footer
        chunks = RrdReader(rrd).stream().to_chunks()
    last: dict[str, tuple[float, list]] = {}
    for c in chunks:
        batch = c.to_record_batch()
        for column, entity in (("Scalars:scalars", "/forces/fingertips"),
                               ("Transform3D:translation", "/world/objects/bottle")):
            if c.entity_path == entity and column in batch.schema.names:
                times = [t.total_seconds() for t in batch.column("session_time").to_pylist()]
                values = batch.column(column).to_pylist()
                i = int(np.argmax(times))
                if entity not in last or times[i] > last[entity][0]:
                    last[entity] = (times[i], values[i])
    if "/forces/fingertips" not in last or max(last["/forces/fingertips"][1]) < 1.0:
        return "no fingertip in contact at the end"
    if "/world/objects/bottle" not in last or last["/world/objects/bottle"][1][0][2] < 0.9:
        return "the bottle is not lifted at the end"
    return ""


def _shrink(raw: Path, out: Path) -> None:
    from PIL import Image

    img = Image.open(raw).convert("RGB").resize(WINDOW, Image.LANCZOS)
    for colours in (256, 128, 64):  # a palette keeps a screenshot small; fewer colours if still too big
        img.quantize(colours, dither=Image.Dither.NONE).save(out, optimize=True)
        if out.stat().st_size <= MAX_BYTES:
            return


if __name__ == "__main__":
    sys.exit(main())
