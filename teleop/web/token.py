"""The access token every page, asset and socket needs.

Kept, not per run: the token lives in the config folder (0600) next to the certificate, so a
headset's bookmark (and its cookie) survive a restart of the session: typing a new URL on a
headset at every restart is the step operators would work around. It is a credential like the
CURVE secret keys and is protected the same way; ``teleop web --new-token`` rotates it, which
locks out every browser that had the old one.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

__all__ = ["load_or_create_token", "token_matches", "TOKEN_BYTES"]

TOKEN_BYTES = 24  # 192 bits: far beyond guessing over a network


def load_or_create_token(config_dir: Path, rotate: bool = False) -> str:
    path = config_dir / "token"
    if path.exists() and not rotate:
        token = path.read_text().strip()
        if len(token) >= 16:
            return token
    token = secrets.token_urlsafe(TOKEN_BYTES)
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison (no timing side channel on how many characters matched)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())
