"""The server's TLS certificate: a self-signed one generated once and kept, or the lab's own.

WebXR needs a secure context, so the page is served over HTTPS even on a LAN. A headset's browser
asks the operator to accept a self-signed certificate once per certificate; regenerating it every
run would ask again every run, so it is generated once into the config folder and reused (its
SHA-256 fingerprint is printed, to compare with what the headset's browser shows).
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
from pathlib import Path
from typing import NamedTuple

from teleop.errors import ConfigError

__all__ = ["CertInfo", "ensure_certificate", "load_certificate", "lan_addresses", "default_config_dir"]

logger = logging.getLogger(__name__)

_VALID_DAYS = 825  # the longest validity Apple platforms accept for a TLS server certificate


class CertInfo(NamedTuple):
    cert_path: Path
    key_path: Path
    sha256: str  # "AB:CD:..." over the DER certificate, as browsers show it
    names: tuple[str, ...]  # the subject alternative names (DNS names and IPs)
    generated: bool  # True when made by this call


def default_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "teleop" / "web"


def lan_addresses() -> list[str]:
    """This host's IPv4 addresses a headset on the LAN could use (the default route's first)."""
    found: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent, it only picks the route
            found.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        found += socket.gethostbyname_ex(socket.gethostname())[2]
    except OSError:
        pass
    return list(dict.fromkeys(a for a in found if not a.startswith("127.")))


def _fingerprint(cert) -> str:
    from cryptography.hazmat.primitives import hashes

    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def _names(cert) -> tuple[str, ...]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(str(v) for v in san.get_values_for_type(x509.DNSName)) + \
        tuple(str(v) for v in san.get_values_for_type(x509.IPAddress))


def load_certificate(cert_path: Path, key_path: Path) -> CertInfo:
    """Check a PEM certificate and key (the lab's own, or ours from an earlier run)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        load_pem_private_key(Path(key_path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"certificate {cert_path} / key {key_path}: {exc}; give PEM files without a "
                          "passphrase (--cert, --key), or leave both out to use a generated one") from None
    if cert.not_valid_after_utc < datetime.datetime.now(datetime.UTC):
        raise ConfigError(f"certificate {cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}; "
                          "renew it (ours: `teleop web --new-cert`)")
    return CertInfo(Path(cert_path), Path(key_path), _fingerprint(cert), _names(cert), False)


def ensure_certificate(config_dir: Path, renew: bool = False) -> CertInfo:
    """The kept self-signed certificate in ``config_dir`` (cert.pem, key.pem 0600), made once."""
    cert_path, key_path = config_dir / "cert.pem", config_dir / "key.pem"
    if cert_path.exists() and key_path.exists() and not renew:
        info = load_certificate(cert_path, key_path)
        missing = [a for a in lan_addresses() if a not in info.names]
        if missing:
            logger.warning("the kept certificate does not name %s (the address changed?); browsers warn more. "
                           "`teleop web --new-cert` makes a new one (the headset must accept it again)", missing)
        return info
    _generate(cert_path, key_path)
    return load_certificate(cert_path, key_path)._replace(generated=True)


def _generate(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname()
    dns = list(dict.fromkeys([host, f"{host}.local", "localhost"]))
    ips = [ipaddress.ip_address(a) for a in ["127.0.0.1", *lan_addresses()]]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"teleop web on {host}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))  # headset clocks drift a little
            .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns] +
                                                       [x509.IPAddress(i) for i in ips]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    logger.info("generated a self-signed certificate %s for %s", cert_path, dns + [str(i) for i in ips])
