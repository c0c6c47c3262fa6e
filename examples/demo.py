"""A short tour of what crypten_lite has today: the Z_2^64 ring core, fixed-point and int8
encodings, and keyed AES-CTR randomness. Later issues turn this into the federated demo."""

from __future__ import annotations

import time

import numpy as np

import crypten_lite as cl
from crypten_lite.ring.prg import AesCtrPrg


def main() -> None:
    cl.show_config()
    print()

    # Two-party additive sharing of a matrix product, by hand, on the ring core.
    enc = cl.encoding.FixedPointEncoder(precision=16)
    data = np.random.default_rng(0)  # demo data only
    x = data.normal(size=(256, 256))
    w = data.normal(size=(256, 128)) / 16
    prg = AesCtrPrg.generate()
    x_ring = enc.encode(x)
    x_share0 = prg.ring_elements(x_ring.shape)
    x_share1 = cl.ring.sub(x_ring, x_share0)
    w_ring = enc.encode(w)
    start = time.perf_counter()
    y0 = cl.ring.matmul(x_share0, w_ring)  # each party multiplies its share by public w
    y1 = cl.ring.matmul(x_share1, w_ring)
    elapsed = time.perf_counter() - start
    y_ring = cl.ring.arshift(cl.ring.add(y0, y1), enc.precision)  # reveal, then rescale
    err = float(np.max(np.abs(enc.decode(y_ring) - x @ w)))
    print(f"shared (256x256) @ public (256x128): two ring matmuls in {elapsed * 1e3:.1f} ms,")
    print(f"  max |error| after reveal = {err:.2e} (one fixed-point unit = {enc.scale:.2e})")

    # int8 per-channel symmetric weights, PyTorch eager-mode semantics.
    scale, zero_point = cl.encoding.calculate_qparams(
        w.min(axis=0), w.max(axis=0), "qint8", "per_channel_symmetric"
    )
    q = cl.encoding.quantize(w, scale, zero_point, "qint8", axis=1)
    w_hat = cl.encoding.dequantize(q, scale, zero_point, axis=1)
    print(f"int8 per-channel weights: max |w - dequant(quant(w))| = {np.abs(w - w_hat).max():.2e}")


if __name__ == "__main__":
    main()
