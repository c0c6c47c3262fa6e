"""Certificates for mutual TLS: a CA and one ECDSA P-256 certificate per rank, made with
``cryptography``; loading them; and the mapping between a certificate and a rank.

Identity names: party ``r`` is ``party-r``, the dealer is ``dealer`` and edge client ``i`` of a
launched job is ``client-i`` (edge clients are never ranks: the party service refuses them
and the edge gateway refuses ranks). A rank's certificate
carries its identity as the common name and as a DNS subject alternative name, next to the
host names/IPs it is reached at. Servers read the client's common name to learn which rank
is calling; clients pin the server's identity with ``grpc.ssl_target_name_override``, so a
server holding another rank's certificate fails the handshake.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from crypten_lite.errors import TlsSetupError

__all__ = [
    "CertPaths",
    "TlsIdentity",
    "client_identity",
    "client_of_identity",
    "identity_name",
    "inspect_identity",
    "issue_certificate",
    "job_identities",
    "load_identity",
    "make_ca",
    "prepare_key_dir",
    "rank_of_identity",
    "write_client_certs",
    "write_job_certs",
]

_CLOCK_SKEW = datetime.timedelta(minutes=5)


def identity_name(rank: int, world_size: int) -> str:
    """The certificate identity of ``rank``: ``party-<rank>``, or ``dealer`` for the dealer."""
    if not 0 <= rank <= world_size:
        raise TlsSetupError(f"rank {rank} is outside 0..{world_size} (dealer = {world_size})")
    return "dealer" if rank == world_size else f"party-{rank}"


def rank_of_identity(name: str, world_size: int) -> int | None:
    """The rank a certificate identity names in a job of ``world_size`` parties, or None."""
    if name == "dealer":
        return world_size
    prefix, _, digits = name.partition("-")
    if prefix != "party" or not digits.isdigit() or digits != str(int(digits)):
        return None
    rank = int(digits)
    return rank if rank < world_size else None


_CLIENT_PREFIX = "client-"
_CLIENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_MAX_CLIENT_ID = 64


def client_identity(index: int | str) -> str:
    """The certificate identity (= client id) of edge client ``index``: ``client-<index>``."""
    name = f"{_CLIENT_PREFIX}{index}"
    if client_of_identity(name) is None:
        raise TlsSetupError(
            f"client suffix must be 1-{_MAX_CLIENT_ID - len(_CLIENT_PREFIX)} characters of "
            "[A-Za-z0-9._-]"
        )
    return name


def client_of_identity(name: str) -> str | None:
    """The client id a certificate identity names (``client-<suffix>``), or None for ranks,
    empty or malformed names."""
    if not name.startswith(_CLIENT_PREFIX) or not len(_CLIENT_PREFIX) < len(name) <= _MAX_CLIENT_ID:
        return None
    return name if set(name) <= _CLIENT_CHARS else None


@dataclass(frozen=True)
class TlsIdentity:
    """PEM bytes one rank needs: the CA certificate, its own certificate and private key."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def __repr__(self) -> str:
        return "TlsIdentity(<ca>, <cert>, <key hidden>)"


@dataclass(frozen=True)
class CertPaths:
    """Where a rank's CA certificate, certificate and key live on disk."""

    ca: Path
    cert: Path
    key: Path


def load_identity(paths: CertPaths) -> TlsIdentity:
    """Read the three PEM files, naming the one that is missing or unreadable."""
    blobs: dict[str, bytes] = {}
    for label, path in (("ca", paths.ca), ("cert", paths.cert), ("key", paths.key)):
        try:
            blobs[label] = Path(path).read_bytes()
        except OSError as err:
            raise TlsSetupError(f"cannot read TLS {label} file {path}: {err.strerror}") from err
        if b"-----BEGIN" not in blobs[label]:
            raise TlsSetupError(f"TLS {label} file {path} is not PEM")
    return TlsIdentity(blobs["ca"], blobs["cert"], blobs["key"])


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "crypten_lite"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(common_name: str = "crypten_lite job CA", days: int = 365) -> tuple[bytes, bytes]:
    """A fresh CA: ``(certificate PEM, private key PEM)``, ECDSA P-256 / SHA-256."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _san_entry(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue_certificate(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    identity: str,
    hosts: Iterable[str] = ("127.0.0.1", "localhost"),
    days: int = 365,
) -> tuple[bytes, bytes]:
    """A leaf certificate for ``identity`` signed by the CA: ``(certificate PEM, key PEM)``.

    The identity is the common name and the first DNS name; ``hosts`` (IPs or DNS names)
    follow, so the certificate also verifies against the address the rank listens on.
    """
    try:
        ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
        ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    except ValueError as err:
        raise TlsSetupError(f"cannot load the CA certificate or key: {err}") from err
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TlsSetupError("the CA key must be an ECDSA key")
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(identity)]
    for host in dict.fromkeys(h for h in hosts if h and h != identity):
        names.append(_san_entry(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(identity))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _write(path: Path, data: bytes, secret: bool, *, force: bool = False) -> None:
    """Create ``path`` afresh (``O_EXCL``, never through a symlink) with mode 0600 for keys,
    0644 for certificates. An existing file is refused unless ``force``, which removes a
    regular file first; a symlink or any other kind of file is always refused."""
    mode = 0o600 if secret else 0o644
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            raise TlsSetupError(f"refusing to write {path}: it is a symbolic link")
        if not stat.S_ISREG(info.st_mode):
            raise TlsSetupError(f"refusing to write {path}: it exists and is not a regular file")
        if not force:
            raise TlsSetupError(
                f"refusing to overwrite {path}: it already exists (remove it, write into a new "
                "directory, or pass --force)"
            )
        os.unlink(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError as err:
        raise TlsSetupError(f"refusing to write {path}: it appeared while writing") from err
    except OSError as err:
        raise TlsSetupError(f"cannot create {path}: {err.strerror}") from err
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), mode)  # the umask may have removed bits; never added any
        handle.write(data)


def prepare_key_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` with mode 0700 (parents as usual), or check an existing one: it
    must be a directory owned by this user that neither group nor others can write."""
    out_dir = Path(out_dir)
    if not out_dir.exists() and not out_dir.is_symlink():
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(out_dir, 0o700)
        except FileExistsError:
            pass
        else:
            os.chmod(out_dir, 0o700)
    try:
        info = os.stat(out_dir)
    except OSError as err:
        raise TlsSetupError(f"cannot use {out_dir}: {err.strerror}") from err
    if not stat.S_ISDIR(info.st_mode):
        raise TlsSetupError(f"{out_dir} is not a directory")
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise TlsSetupError(f"refusing to write keys into {out_dir}: another user owns it")
    if info.st_mode & 0o022:
        raise TlsSetupError(
            f"refusing to write keys into {out_dir}: group or others can write to it "
            f"(mode {stat.S_IMODE(info.st_mode):o}; chmod 700 it or use a new directory)"
        )
    return out_dir


def write_job_certs(
    out_dir: Path,
    world_size: int,
    hosts: Mapping[int, Sequence[str]] | None = None,
    *,
    days: int = 365,
    ca: tuple[bytes, bytes] | None = None,
    force: bool = False,
) -> dict[int, CertPaths]:
    """Write ``ca.pem``/``ca.key`` and ``<identity>.pem``/``<identity>.key`` for every rank
    (parties ``0..world_size-1`` and the dealer) into ``out_dir``.

    ``out_dir`` is created with mode 0700 (an existing one must be ours and not writable by
    group or others); every file is created afresh with ``O_EXCL|O_NOFOLLOW``, keys 0600.
    An existing file is refused unless ``force`` (which replaces regular files only).
    ``hosts[rank]`` lists the names/IPs that rank is reached at (default loopback);
    ``ca`` reuses an existing CA ``(certificate PEM, key PEM)`` to rotate leaf certificates.
    """
    if world_size < 1:
        raise TlsSetupError(f"world_size must be >= 1, got {world_size}")
    out_dir = prepare_key_dir(out_dir)
    if ca is None:
        ca = make_ca(days=days)
        _write(out_dir / "ca.key", ca[1], secret=True, force=force)
    _write(out_dir / "ca.pem", ca[0], secret=False, force=force)
    written: dict[int, CertPaths] = {}
    for rank in range(world_size + 1):
        name = identity_name(rank, world_size)
        rank_hosts = (hosts or {}).get(rank, ("127.0.0.1", "localhost"))
        cert_pem, key_pem = issue_certificate(ca[0], ca[1], name, rank_hosts, days)
        paths = CertPaths(out_dir / "ca.pem", out_dir / f"{name}.pem", out_dir / f"{name}.key")
        _write(paths.cert, cert_pem, secret=False, force=force)
        _write(paths.key, key_pem, secret=True, force=force)
        written[rank] = paths
    return written


def write_client_certs(
    out_dir: Path,
    clients: int | Sequence[str],
    *,
    ca: tuple[bytes, bytes] | None = None,
    days: int = 365,
    force: bool = False,
) -> dict[str, CertPaths]:
    """Write ``client-<i>.pem``/``.key`` for edge clients, signed by the job CA ``ca``
    (``(certificate PEM, key PEM)``; None: the ``ca.pem``/``ca.key`` that
    :func:`write_job_certs` wrote into ``out_dir``). ``clients``: a count (ids ``client-0``
    ..) or the suffixes. Returns client id -> paths; files are written as by
    :func:`write_job_certs` (0700 directory, ``O_EXCL|O_NOFOLLOW``, keys 0600)."""
    if isinstance(clients, bool):
        raise TlsSetupError("clients must be a count or a list of client suffixes")
    if isinstance(clients, int):
        if clients < 0:
            raise TlsSetupError(f"clients must be >= 0, got {clients}")
        suffixes: list[str] = [str(i) for i in range(clients)]
    else:
        suffixes = [str(c) for c in clients]
    out_dir = prepare_key_dir(out_dir)
    if ca is None:
        try:
            ca = ((out_dir / "ca.pem").read_bytes(), (out_dir / "ca.key").read_bytes())
        except OSError as err:
            raise TlsSetupError(f"no job CA in {out_dir}: {err.strerror}") from err
    ca_path = out_dir / "ca.pem"
    if not ca_path.exists():
        _write(ca_path, ca[0], secret=False, force=force)
    written: dict[str, CertPaths] = {}
    for suffix in suffixes:
        name = client_identity(suffix)
        if name in written:
            raise TlsSetupError(f"client {name!r} listed twice")
        # a client's certificate authenticates it; it never serves, so no host names
        cert_pem, key_pem = issue_certificate(ca[0], ca[1], name, (), days)
        paths = CertPaths(ca_path, out_dir / f"{name}.pem", out_dir / f"{name}.key")
        _write(paths.cert, cert_pem, secret=False, force=force)
        _write(paths.key, key_pem, secret=True, force=force)
        written[name] = paths
    return written


def job_identities(
    world_size: int,
    clients: int = 0,
    *,
    hosts: Iterable[str] = ("127.0.0.1", "localhost"),
    days: int = 1,
) -> tuple[dict[int, TlsIdentity], dict[str, TlsIdentity]]:
    """A throwaway job CA and its leaf identities, all in memory: every rank's
    (``0..world_size``, the dealer last) and ``client-0..`` for ``clients`` edge clients.

    The CA key exists only inside this call: it signs the leaves and is dropped, so no
    process of the job — and no file — ever holds it. Nothing is written to disk.
    """
    if world_size < 1:
        raise TlsSetupError(f"world_size must be >= 1, got {world_size}")
    ca_cert, ca_key = make_ca(days=days)
    ranks = {}
    for rank in range(world_size + 1):
        cert_pem, key_pem = issue_certificate(
            ca_cert, ca_key, identity_name(rank, world_size), hosts, days
        )
        ranks[rank] = TlsIdentity(ca_cert, cert_pem, key_pem)
    edge = {}
    for index in range(clients):
        name = client_identity(index)
        cert_pem, key_pem = issue_certificate(ca_cert, ca_key, name, (), days)
        edge[name] = TlsIdentity(ca_cert, cert_pem, key_pem)
    del ca_key
    return ranks, edge


def inspect_identity(paths: CertPaths, identity: str) -> list[str]:
    """Problems with one rank's TLS files, each a sentence saying what to fix (empty = OK):
    unreadable files, a certificate not signed by the CA, a key that does not belong to the
    certificate, the wrong identity, an expired certificate, a key others can read."""
    try:
        blobs = load_identity(paths)
        ca = x509.load_pem_x509_certificate(blobs.ca_pem)
        cert = x509.load_pem_x509_certificate(blobs.cert_pem)
        key = serialization.load_pem_private_key(blobs.key_pem, password=None)
    except (TlsSetupError, ValueError, TypeError) as err:
        return [f"cannot load the TLS files: {err}"]
    problems = []
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        problems.append(f"{paths.cert} is not signed by the CA in {paths.ca}")
    pub = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*pub) != cert.public_key().public_bytes(*pub):
        problems.append(f"{paths.key} is not the private key of {paths.cert}")
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [identity]:
        problems.append(f"{paths.cert} names {names} but this rank is {identity!r}")
    now = datetime.datetime.now(datetime.UTC)
    if now > cert.not_valid_after_utc:
        problems.append(f"{paths.cert} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    if now < cert.not_valid_before_utc:
        problems.append(f"{paths.cert} is not valid before {cert.not_valid_before_utc:%Y-%m-%d}")
    if now > ca.not_valid_after_utc:
        problems.append(f"the CA {paths.ca} expired on {ca.not_valid_after_utc:%Y-%m-%d}")
    if os.stat(paths.key).st_mode & 0o077:
        problems.append(f"{paths.key} is readable by other users (chmod 600 it)")
    return problems
