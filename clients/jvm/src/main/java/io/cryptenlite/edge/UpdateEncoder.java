package io.cryptenlite.edge;

import java.math.BigInteger;

/**
 * A float model update as ring elements ({@code crypten_lite.edge.encode.encode_update}):
 * clip to {@code [-clip, clip]}, then {@code int8}/{@code int16} symmetric quantization (round
 * half to even, clamped to {@code [-qmax, qmax]}) or {@code fixed16}; negative values wrap into
 * the ring (two's complement, low {@code ringBits} bits).
 *
 * <p>Secret: the input and the output (the update in the clear). Errors never show values.
 */
public final class UpdateEncoder {
  private UpdateEncoder() {}

  /**
   * The encoded update, one ring element per value.
   *
   * @throws EncodingException for NaN or infinity, or a spec whose one update does not fit the
   *     ring
   */
  public static long[] encode(double[] x, QuantSpec quant, int ringBits) {
    RingWords.checkBits(ringBits);
    if (quant.maxClients(ringBits) < 1) {
      throw new EncodingException(
          "clip "
              + Text.number(quant.clip())
              + " does not fit a "
              + ringBits
              + "-bit ring with "
              + quant.scheme().wireName());
    }
    for (double v : x) {
      if (Double.isNaN(v) || Double.isInfinite(v)) {
        throw new EncodingException("the update x contains NaN or infinity");
      }
    }
    double clip = quant.clip();
    double[] clipped = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      clipped[i] = Math.min(Math.max(x[i], -clip), clip);
    }
    long[] out;
    if (quant.scheme() == QuantSpec.Scheme.FIXED16) {
      out = FixedPoint.encode(clipped, QuantSpec.FIXED_BITS);
    } else {
      BigInteger qmaxBig = quant.qmax();
      double qmax = qmaxBig.doubleValue();
      double scale = quant.scale();
      out = new long[x.length];
      for (int i = 0; i < x.length; i++) {
        double q = Math.rint(clipped[i] / scale);
        out[i] = (long) Math.min(Math.max(q, -qmax), qmax);
      }
    }
    for (int i = 0; i < out.length; i++) {
      out[i] = RingWords.reduce(out[i], ringBits);
    }
    return out;
  }

  /** {@link #encode(double[], QuantSpec, int)} of a float update (widened exactly). */
  public static long[] encode(float[] x, QuantSpec quant, int ringBits) {
    return encode(widen(x), quant, ringBits);
  }

  static double[] widen(float[] x) {
    double[] out = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      out[i] = x[i];
    }
    return out;
  }
}
