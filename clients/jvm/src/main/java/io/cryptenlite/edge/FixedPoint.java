package io.cryptenlite.edge;

/**
 * Fixed point with {@code fracBits} fractional bits in the 64-bit ring, as {@code
 * crypten_lite.encoding.FixedPointEncoder}: {@code x -> round_half_even(x * 2^p)} as a two's
 * complement int64, decoded as the signed value times {@code 2^-p}. Encodings satisfy {@code
 * |v| < 2^62}; the largest encodable magnitude is {@code (2^62 - 2^9) * 2^-p}.
 */
public final class FixedPoint {
  /** The largest precision the servers accept. */
  public static final int MAX_FRAC_BITS = 52;

  private FixedPoint() {}

  /** The largest encodable magnitude at {@code fracBits}. */
  public static double maxAbs(int fracBits) {
    checkFracBits(fracBits);
    return Math.scalb((double) ((1L << 62) - (1L << 9)), -fracBits);
  }

  /**
   * Reals to ring elements.
   *
   * @throws EncodingException for NaN/infinity or a magnitude beyond {@link #maxAbs}
   */
  public static long[] encode(double[] x, int fracBits) {
    double limit = maxAbs(fracBits);
    for (double v : x) {
      if (Double.isNaN(v) || Double.isInfinite(v)) {
        throw new EncodingException("x contains NaN or infinity, which cannot be encoded");
      }
    }
    long[] out = new long[x.length];
    for (int i = 0; i < x.length; i++) {
      if (Math.abs(x[i]) > limit) {
        throw new EncodingException(
            "x: a magnitude exceeds max_abs = "
                + limit
                + " (|x| * 2^"
                + fracBits
                + " must stay below 2^62) at precision "
                + fracBits);
      }
      out[i] = (long) Math.rint(Math.scalb(x[i], fracBits));
    }
    return out;
  }

  /** Ring elements (any uint64) to reals: the signed view times {@code 2^-fracBits}. */
  public static double[] decode(long[] ring, int fracBits) {
    checkFracBits(fracBits);
    double scale = Math.scalb(1.0, -fracBits);
    double[] out = new double[ring.length];
    for (int i = 0; i < ring.length; i++) {
      out[i] = (double) ring[i] * scale;
    }
    return out;
  }

  static int checkFracBits(int fracBits) {
    if (fracBits < 0 || fracBits > MAX_FRAC_BITS) {
      throw new EncodingException(
          "frac_bits must lie in [0, " + MAX_FRAC_BITS + "], got " + fracBits);
    }
    return fracBits;
  }
}
