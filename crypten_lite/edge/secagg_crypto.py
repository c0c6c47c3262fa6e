"""The cryptography of single-server secure aggregation (SecAgg, Bonawitz et al., CCS 2017;
SecAgg+, Bell et al., CCS 2020), shared by the client SDK and the server.

Per round every client ``u`` makes two X25519 key pairs (RFC 7748, ``cryptography``):
``c_u`` encrypts the Shamir shares it sends its neighbours, ``s_u`` agrees the pairwise
masks. Everything is bound to the round by ``context = SHA-256("crypten-lite/v1/secagg" ‖
job id ‖ round)``:

* pairwise mask seed ``s_uv = HKDF-SHA256(X25519(s_u, s_v), salt=context,
  info="crypten-lite/v1/secagg/pair/<min(u,v)>/<max(u,v)>")`` (32 bytes, both ends derive the
  same), expanded with :func:`crypten_lite.edge.shares.expand_seed` (AES-CTR);
  ``y_u = x_u + PRG(b_u) + Σ_v sign(u, v)·PRG(s_uv) mod 2^ring_bits``, ``sign = +1`` if
  ``u < v`` else ``-1``, so each pair cancels in the sum;
* share encryption key ``HKDF-SHA256(X25519(c_u, c_v), salt=context,
  info="crypten-lite/v1/secagg/share/<min>/<max>")``, AES-256-GCM with a random 96-bit nonce
  and ``context ‖ sender ‖ receiver`` as associated data: a ciphertext relayed to another
  client, round or job fails authentication;
* the self-mask seed ``b_u`` (32 random bytes) is committed to with
  ``SHA-256(context ‖ u ‖ b_u)`` so the server can tell a reconstruction from bad shares.

Cost per client: 2 key generations, ``2·d`` X25519 exchanges and HKDFs for ``d``
neighbours (~80 µs each here), ``d + 1`` keystreams of ``m·ring_bits/8`` bytes.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crypten_lite.errors import ProtocolError

__all__ = [
    "GCM_NONCE_SIZE",
    "KEY_SIZE",
    "SEALED_SIZE",
    "RoundKeys",
    "ShareAuthenticationError",
    "check_public_key",
    "commit_seed",
    "mask_sign",
    "open_shares",
    "pair_seed",
    "private_key",
    "public_key_of",
    "round_context",
    "seal_shares",
    "share_key",
]

KEY_SIZE = 32
GCM_NONCE_SIZE = 12
_TAG_SIZE = 16
#: bytes of one sealed pair of shares (nonce + two 66-byte shares + tag).
SEALED_SIZE = GCM_NONCE_SIZE + 2 * 66 + _TAG_SIZE
_DOMAIN = b"crypten-lite/v1/secagg"


class ShareAuthenticationError(ProtocolError):
    """A relayed ciphertext failed AES-GCM authentication (tampered, or meant for another
    client, round or job)."""


def round_context(job_id: str, round_number: int) -> bytes:
    """The 32-byte value every key of one round is bound to."""
    job = job_id.encode("utf-8")
    framed = _DOMAIN + struct.pack(">I", len(job)) + job + struct.pack(">Q", round_number)
    return hashlib.sha256(framed).digest()


def mask_sign(u: int, v: int) -> int:
    """``+1`` if ``u < v`` else ``-1``: the sign of ``PRG(s_uv)`` in ``u``'s masked input."""
    return 1 if u < v else -1


def _public_bytes(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class RoundKeys:
    """One client's key pairs for one round (never printed, never pickled)."""

    __slots__ = ("_cipher", "_mask", "cipher_public", "mask_public")

    def __init__(self) -> None:
        self._cipher = X25519PrivateKey.generate()
        self._mask = X25519PrivateKey.generate()
        self.cipher_public = _public_bytes(self._cipher)
        self.mask_public = _public_bytes(self._mask)

    @property
    def cipher_private(self) -> X25519PrivateKey:
        return self._cipher

    @property
    def mask_private(self) -> X25519PrivateKey:
        return self._mask

    def mask_secret(self) -> bytes:
        """The raw mask private key: the secret Shamir-shared with the neighbours."""
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        return self._mask.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def __repr__(self) -> str:
        return "RoundKeys(<hidden>)"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("RoundKeys cannot be pickled")


def private_key(raw: bytes) -> X25519PrivateKey:
    """An X25519 private key from its 32 raw bytes (a reconstructed mask key)."""
    return X25519PrivateKey.from_private_bytes(raw)


def public_key_of(raw_private: bytes) -> bytes:
    """The raw public key of a raw private key."""
    return _public_bytes(private_key(raw_private))


def check_public_key(raw: object, what: str) -> bytes:
    """``raw`` if it is a usable X25519 public key; ``ProtocolError`` naming ``what``
    otherwise (wrong size, or a low-order point whose shared secret would be zero)."""
    if not isinstance(raw, bytes) or len(raw) != KEY_SIZE:
        raise ProtocolError(f"{what} must be {KEY_SIZE} bytes")
    try:
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError as err:  # all-zero shared secret: a small-order point
        raise ProtocolError(f"{what} is not a valid X25519 public key") from err
    return raw


def _derive(secret: bytes, context: bytes, label: bytes, a: int, b: int) -> bytes:
    lo, hi = min(a, b), max(a, b)
    info = _DOMAIN + b"/" + label + b"/%d/%d" % (lo, hi)
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=context, info=info).derive(secret)


def _exchange(own: X25519PrivateKey, peer_public: bytes) -> bytes:
    try:
        return own.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as err:
        raise ProtocolError("a peer's public key is not a valid X25519 key") from err


def pair_seed(own: X25519PrivateKey, peer_public: bytes, context: bytes, u: int, v: int) -> bytes:
    """The 32-byte seed of the pairwise mask between clients ``u`` and ``v``."""
    return _derive(_exchange(own, peer_public), context, b"pair", u, v)


def share_key(own: X25519PrivateKey, peer_public: bytes, context: bytes, u: int, v: int) -> bytes:
    """The AES-256-GCM key of the share channel between ``u`` and ``v``."""
    return _derive(_exchange(own, peer_public), context, b"share", u, v)


def _aad(context: bytes, sender: int, receiver: int) -> bytes:
    return context + struct.pack(">II", sender, receiver)


def seal_shares(key: bytes, context: bytes, sender: int, receiver: int, plaintext: bytes) -> bytes:
    """``nonce ‖ AES-GCM(key, plaintext)`` bound to the round and both indices."""
    nonce = secrets.token_bytes(GCM_NONCE_SIZE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(context, sender, receiver))


def open_shares(
    key: bytes, context: bytes, sender: int, receiver: int, sealed: bytes
) -> bytes:
    """Inverse of :func:`seal_shares`; :class:`ShareAuthenticationError` if it fails."""
    if not isinstance(sealed, bytes) or len(sealed) <= GCM_NONCE_SIZE + _TAG_SIZE:
        raise ShareAuthenticationError(f"the share from client {sender} is truncated")
    try:
        return AESGCM(key).decrypt(
            sealed[:GCM_NONCE_SIZE], sealed[GCM_NONCE_SIZE:], _aad(context, sender, receiver)
        )
    except InvalidTag as err:
        raise ShareAuthenticationError(
            f"the share from client {sender} to client {receiver} failed authentication"
        ) from err


def commit_seed(context: bytes, index: int, seed: bytes) -> bytes:
    """``SHA-256(context ‖ index ‖ seed)``: binds a self-mask seed before it is shared."""
    return hashlib.sha256(context + struct.pack(">I", index) + seed).digest()
