"""Write ``secagg.json``: known answers of single-server SecAgg's key material that every
client (the Python SDK, the JVM client) must reproduce. Run
``python -m tests.vectors.make_secagg`` to regenerate; ``tests/edge/test_secagg_vectors.py``
checks the Python side against the file, the JVM client's JUnit tests read it too.

Private keys, seeds and AES-GCM nonces are fixed here (real clients draw them fresh)."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypten_lite.edge.secagg_crypto import (
    commit_seed,
    pair_seed,
    private_key,
    public_key_of,
    round_context,
    share_key,
)
from crypten_lite.edge.shamir import PRIME, encode_share, reconstruct
from crypten_lite.edge.shares import expand_seed

OUT = Path(__file__).with_name("secagg.json")


def _poly(secret: bytes, coefficients: list[int], xs: list[int]) -> list[int]:
    values = []
    for x in xs:
        acc = 0
        for c in reversed([int.from_bytes(secret, "big"), *coefficients]):
            acc = (acc * x + c) % PRIME
        values.append(acc)
    return values


def main() -> None:
    contexts = [{"job_id": job, "round": r, "context": round_context(job, r).hex()}
                for job, r in (("job", 1), ("federated-demo", 7), ("é-ü", 2**40))]
    ctx = round_context("job", 3)
    sk_u = bytes(range(1, 33))
    sk_v = bytes(range(101, 133))
    pairs = []
    for u, v in ((2, 9), (9, 2), (1, 1000)):
        pairs.append({
            "context": ctx.hex(), "u": u, "v": v, "private_u": sk_u.hex(),
            "public_u": public_key_of(sk_u).hex(), "private_v": sk_v.hex(),
            "public_v": public_key_of(sk_v).hex(),
            "pair_seed": pair_seed(private_key(sk_u), public_key_of(sk_v), ctx, u, v).hex(),
            "share_key": share_key(private_key(sk_u), public_key_of(sk_v), ctx, u, v).hex(),
            "pair_mask_32": [str(int(w)) for w in expand_seed(
                pair_seed(private_key(sk_u), public_key_of(sk_v), ctx, u, v), 5, 32)],
        })
    key = share_key(private_key(sk_u), public_key_of(sk_v), ctx, 2, 9)
    nonce = bytes(range(12))
    plain = encode_share(12345) + encode_share(PRIME - 1)
    aad = ctx + (2).to_bytes(4, "big") + (9).to_bytes(4, "big")
    sealed = {"key": key.hex(), "context": ctx.hex(), "sender": 2, "receiver": 9,
              "plaintext": plain.hex(),
              "sealed": (nonce + AESGCM(key).encrypt(nonce, plain, aad)).hex()}
    commits = [{"context": ctx.hex(), "index": i, "seed": bytes([i] * 32).hex(),
                "commitment": commit_seed(ctx, i, bytes([i] * 32)).hex()} for i in (1, 77)]
    shamir = []
    for secret, coeffs, xs in ((bytes(range(32)), [5, 7], [1, 2, 3, 4]),
                               (bytes([0xFF] * 32), [PRIME - 2, 3, 2**300], [9, 4, 17, 2**32 - 1])):
        ys = _poly(secret, coeffs, xs)
        t = len(coeffs) + 1
        assert reconstruct(list(zip(xs, ys, strict=True))[:t]) == secret
        shamir.append({"secret": secret.hex(), "threshold": t, "xs": xs,
                       "shares": [encode_share(y).hex() for y in ys]})
    doc = {
        "description": (
            "SecAgg vectors (tests/vectors/make_secagg.py): context = SHA-256('crypten-lite/v1/"
            "secagg' || len(job) as 4-byte BE || job UTF-8 || round as 8-byte BE); pair_seed / "
            "share_key = HKDF-SHA256(X25519(sk_u, pk_v), salt=context, info='crypten-lite/v1/"
            "secagg/pair|share/<min>/<max>', 32 bytes); pair masks = expand_seed(pair_seed); "
            "sealed = nonce(12) || AES-256-GCM(key, plaintext, aad = context || sender 4-byte BE "
            "|| receiver 4-byte BE); commitment = SHA-256(context || index 4-byte BE || seed); "
            "shamir: shares f(x) over GF(2^521-1) as 66-byte BE, any `threshold` of them give "
            "the 32-byte BE secret."
        ),
        "context": contexts,
        "pairs": pairs,
        "sealed": sealed,
        "commitments": commits,
        "shamir": shamir,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
