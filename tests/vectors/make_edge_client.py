"""Write ``edge_client.json``: what any edge client (the Python SDK, the JVM client under
``clients/jvm``) must reproduce byte for byte. Run ``python -m tests.vectors.make_edge_client``
to regenerate; ``tests/client/test_edge_vectors.py`` checks the Python SDK against the file,
the JVM client's JUnit tests read the same file.

Ring words are decimal strings (uint64 does not fit a JSON number); seeds are hex. Inputs are
chosen to hit the edges: the clip boundary, values just beyond it, rounding ties (half to
even), negative zero, and tiny values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from crypten_lite.client import pack_weighted_update
from crypten_lite.edge.encode import encode_update
from crypten_lite.edge.messages import QuantSpec
from crypten_lite.edge.shares import expand_seed
from crypten_lite.encoding import FixedPointEncoder

OUT = Path(__file__).with_name("edge_client.json")


def _words(a: np.ndarray) -> list[str]:
    return [str(int(v)) for v in np.asarray(a).reshape(-1)]


def _inputs(clip: float, qmax: int) -> list[float]:
    step = clip / qmax
    ties = [k * step + step / 2 for k in (-3, -2, -1, 0, 1, 2)]
    return [0.0, -0.0, clip, -clip, clip * 1.5, -clip * 7, step, -step, 1e-9, -1e-9,
            0.3 * clip, -0.77 * clip, *ties]


def main() -> None:
    seeds = [bytes(range(32)), bytes([0xFF] * 32), bytes.fromhex("5a" * 16 + "a5" * 16)]
    expansion = [
        {"seed": seed.hex(), "num_elements": n, "ring_bits": bits,
         "words": _words(expand_seed(seed, n, bits))}
        for seed in seeds for bits in (32, 64) for n in (0, 1, 7, 33)
    ]
    encode = []
    for scheme, qmax in (("int8", 127), ("int16", 32767), ("fixed16", None)):
        for clip in (1.0, 0.05, 3.0):
            limit = qmax if qmax is not None else round(clip * 65536)
            x = _inputs(clip, limit)
            for bits in (32, 64):
                words = encode_update(np.array(x), QuantSpec(scheme, clip), bits)
                encode.append({"scheme": scheme, "clip": clip, "ring_bits": bits, "x": x,
                               "words": _words(words)})
    split = []
    rng = np.random.default_rng(7)
    for bits in (32, 64):
        dtype = np.uint32 if bits == 32 else np.uint64
        values = rng.integers(0, 2**bits, 9, dtype=np.uint64).astype(dtype)
        for k in (2, 3):
            chosen = seeds[: k - 1]
            masked = values.copy()
            for seed in chosen:
                np.subtract(masked, expand_seed(seed, values.size, bits), out=masked)
            split.append({"ring_bits": bits, "values": _words(values),
                          "seeds": [s.hex() for s in chosen], "masked": _words(masked)})
    fixed = [{"frac_bits": f, "x": [0.0, 1.0, -1.0, 0.5, -2.75, 1e-6, 123.456],
              "words": _words(FixedPointEncoder(f).encode(
                  np.array([0.0, 1.0, -1.0, 0.5, -2.75, 1e-6, 123.456])))}
             for f in (8, 16)]
    packed = [{"delta": [0.25, -0.5, 0.0], "weight": w,
               "packed": [float(v) for v in pack_weighted_update(np.array([0.25, -0.5, 0.0]), w)]}
              for w in (1.0, 0.5)]
    doc = {
        "description": (
            "Edge-client vectors (see tests/vectors/make_edge_client.py): seed expansion = "
            "HKDF-SHA256(seed, salt 'crypten_lite.prg.seed.v1', info "
            "'crypten_lite.prg.from_seed.v1', 32 bytes) -> AES-128 key || 16-byte initial "
            "counter block, AES-CTR keystream over zeros read as little-endian uint32/uint64; "
            "encode = encode_update; split: masked = values - sum(expand(seed)) mod 2^bits; "
            "fixed_point: FixedPointEncoder(frac_bits) into the 64-bit ring (private-inference "
            "inputs); pack_weighted: [w*delta, w]."
        ),
        "seed_expansion": expansion,
        "encode": encode,
        "split": split,
        "fixed_point": fixed,
        "pack_weighted": packed,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
