"""Numba kernels of the retargeting hot path: pure functions over preallocated NumPy arrays.

Numba's on-disk cache (``cache=True``) checks only the source file of the function it loads, so a
kernel whose callee changed in another file would load stale machine code. Importing this package
first compares a hash of every kernel source with the one recorded next to the cache and drops
the cached kernels when they differ.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _drop_stale_cache() -> None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return  # a user-managed cache location
    here = Path(__file__).resolve().parent
    digest = hashlib.sha1()
    for src in sorted(here.glob("*.py")):
        digest.update(src.name.encode())
        digest.update(src.read_bytes())
    cache = here / "__pycache__"
    stamp = cache / "kernels.sha1"
    try:
        if stamp.read_text() == digest.hexdigest():
            return
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            f.unlink(missing_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:
        pass  # read-only install: numba falls back to its own cache directory


_drop_stale_cache()
