package io.cryptenlite.edge;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.Locale;

/**
 * How a float update is encoded into the ring before sharing (public: every server announces
 * it in {@code RoundInfo}), mirroring {@code crypten_lite.edge.encode.quant_params}:
 *
 * <ul>
 *   <li>{@code int8} / {@code int16}: symmetric quantization of {@code clip(x, -clip, clip)}
 *       with scale {@code clip / 127} or {@code clip / 32767}, round half to even, clamped to
 *       {@code [-qmax, qmax]};
 *   <li>{@code fixed16}: fixed point with 16 fractional bits (scale {@code 2^-16}); {@code qmax
 *       = round_half_even(clip * 2^16)}.
 * </ul>
 */
public final class QuantSpec {
  /** The encodings a job may announce. */
  public enum Scheme {
    INT8("int8", 127),
    INT16("int16", 32767),
    FIXED16("fixed16", 0);

    private final String wireName;
    private final int qmax;

    Scheme(String wireName, int qmax) {
      this.wireName = wireName;
      this.qmax = qmax;
    }

    /** The name on the wire ({@code quant_scheme}). */
    public String wireName() {
      return wireName;
    }

    /** The scheme named {@code name} on the wire, or null. */
    public static Scheme fromWire(String name) {
      for (Scheme scheme : values()) {
        if (scheme.wireName.equals(name)) {
          return scheme;
        }
      }
      return null;
    }
  }

  /** Fractional bits of {@code fixed16}. */
  public static final int FIXED_BITS = 16;

  private final Scheme scheme;
  private final double clip;

  private QuantSpec(Scheme scheme, double clip) {
    this.scheme = scheme;
    this.clip = clip;
  }

  /**
   * A validated spec.
   *
   * @throws EncodingException for an unknown scheme or a clip that is not finite and &gt; 0
   */
  public static QuantSpec of(String scheme, double clip) {
    Scheme parsed = Scheme.fromWire(scheme);
    if (parsed == null) {
      throw new EncodingException(
          "quant.scheme must be one of (int8, int16, fixed16), got '" + Text.clean(scheme, 40) + "'");
    }
    return of(parsed, clip);
  }

  /** A validated spec (see {@link #of(String, double)}). */
  public static QuantSpec of(Scheme scheme, double clip) {
    if (scheme == null) {
      throw new EncodingException("quant.scheme must be set");
    }
    if (Double.isNaN(clip) || Double.isInfinite(clip)) {
      throw new EncodingException("quant.clip must be a finite number, got " + clip);
    }
    if (clip <= 0) {
      throw new EncodingException("quant.clip must be > 0, got " + clip);
    }
    return new QuantSpec(scheme, clip);
  }

  public Scheme scheme() {
    return scheme;
  }

  public double clip() {
    return clip;
  }

  /** One ring unit's real value. */
  public double scale() {
    return scheme == Scheme.FIXED16 ? Math.scalb(1.0, -FIXED_BITS) : clip / scheme.qmax;
  }

  /** The largest encoded magnitude (null if {@code clip * 2^16} overflows a double). */
  public BigInteger qmax() {
    if (scheme != Scheme.FIXED16) {
      return BigInteger.valueOf(scheme.qmax);
    }
    double units = Math.rint(clip / scale());
    if (Double.isInfinite(units)) {
      return null;
    }
    return new BigDecimal(units).toBigInteger();
  }

  /**
   * How many clients' updates a {@code ringBits} ring can sum without wrapping: {@code
   * (2^(bits-1) - 1) // qmax} (0 if even one does not fit).
   */
  public long maxClients(int ringBits) {
    RingWords.checkBits(ringBits);
    BigInteger qmax = qmax();
    if (qmax == null) {
      return 0;
    }
    BigInteger capacity = BigInteger.ONE.shiftLeft(ringBits - 1).subtract(BigInteger.ONE);
    return capacity.divide(qmax.max(BigInteger.ONE)).longValue();
  }

  /**
   * Throws unless the sum of {@code numClients} updates fits a {@code ringBits} ring.
   *
   * @throws EncodingException naming the limit
   */
  public void checkCapacity(int ringBits, long numClients) {
    long limit = maxClients(ringBits);
    if (numClients > limit) {
      throw new EncodingException(
          String.format(
              Locale.ROOT,
              "a %d-bit ring holds the sum of at most %d %s updates with clip %s; got %d clients"
                  + " (use a 64-bit ring, a smaller clip or fewer clients)",
              ringBits,
              limit,
              scheme.wireName,
              Text.number(clip),
              numClients));
    }
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof QuantSpec)) {
      return false;
    }
    QuantSpec that = (QuantSpec) other;
    return scheme == that.scheme && clip == that.clip;
  }

  @Override
  public int hashCode() {
    long bits = Double.doubleToLongBits(clip);
    return scheme.hashCode() * 31 + (int) (bits ^ (bits >>> 32));
  }

  @Override
  public String toString() {
    return "QuantSpec(" + scheme.wireName + ", clip=" + Text.number(clip) + ")";
  }
}
