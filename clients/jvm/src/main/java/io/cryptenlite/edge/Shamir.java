package io.cryptenlite.edge;

import java.math.BigInteger;
import java.security.SecureRandom;
import java.util.HashSet;
import java.util.Set;

/**
 * t-of-n Shamir secret sharing of 32-byte secrets over the prime field GF(2^521 - 1) ({@code
 * crypten_lite.edge.shamir}).
 *
 * <p>A secret (read as a 256-bit big-endian integer) is the constant term of a random
 * polynomial {@code f} of degree {@code t - 1}; the share of the holder with x-coordinate
 * {@code x} ({@code 1 <= x < 2^32}, its round index) is {@code f(x)}, travelling as {@link
 * #SHARE_SIZE} = 66 big-endian bytes. Any {@code t} shares give {@code f(0)} by Lagrange
 * interpolation; {@code t - 1} or fewer are independent of the secret. Each random coefficient
 * is 80 bytes of {@link SecureRandom} reduced mod p (statistical distance to uniform below
 * 2^-118), as the Python side draws 80 bytes of an AES-CTR stream.
 *
 * <p>Secret: the secret, the coefficients and every share. {@link BigInteger}s cannot be
 * wiped; nothing here keeps or prints them.
 */
public final class Shamir {
  /** The field modulus, the Mersenne prime 2^521 - 1. */
  public static final BigInteger PRIME = BigInteger.ONE.shiftLeft(521).subtract(BigInteger.ONE);
  /** Bytes of a secret. */
  public static final int SECRET_SIZE = 32;
  /** Bytes of an encoded share: ceil(521 / 8). */
  public static final int SHARE_SIZE = 66;

  static final int DRAW_BYTES = 80;
  static final long MAX_X = 1L << 32;

  private Shamir() {}

  /**
   * The shares {@code f(x)} of {@code secret} (32 bytes) for each x in {@code xs}; any {@code
   * threshold} of them reconstruct it.
   *
   * @throws ShamirException for a secret that is not 32 bytes, invalid or repeated
   *     x-coordinates, or a threshold outside {@code [1, xs.length]}
   */
  public static BigInteger[] share(byte[] secret, long[] xs, int threshold, SecureRandom random) {
    if (secret == null || secret.length != SECRET_SIZE) {
      throw new ShamirException("the secret must be " + SECRET_SIZE + " bytes");
    }
    checkXs(xs);
    if (threshold < 1) {
      throw new ShamirException("threshold must be a positive int, got " + threshold);
    }
    if (threshold > xs.length) {
      throw new ShamirException(
          "threshold " + threshold + " exceeds the " + xs.length + " holders");
    }
    BigInteger[] coefficients = new BigInteger[threshold];
    coefficients[0] = new BigInteger(1, secret);
    byte[] draw = new byte[DRAW_BYTES];
    for (int i = 1; i < threshold; i++) {
      random.nextBytes(draw);
      coefficients[i] = new BigInteger(1, draw).mod(PRIME);
    }
    java.util.Arrays.fill(draw, (byte) 0);
    BigInteger[] shares = new BigInteger[xs.length];
    for (int j = 0; j < xs.length; j++) {
      BigInteger x = BigInteger.valueOf(xs[j]);
      BigInteger value = BigInteger.ZERO;
      for (int i = threshold - 1; i >= 0; i--) { // Horner
        value = value.multiply(x).add(coefficients[i]).mod(PRIME);
      }
      shares[j] = value;
    }
    return shares;
  }

  /**
   * The secret {@code f(0)} from the points {@code (xs[i], ys[i])}; exactly the ones given are
   * used (pass {@code threshold} of them).
   *
   * @throws ShamirException if the points are malformed or do not interpolate to a 32-byte
   *     secret (a wrong or missing share)
   */
  public static byte[] reconstruct(long[] xs, BigInteger[] ys) {
    checkXs(xs);
    if (ys == null || ys.length != xs.length) {
      throw new ShamirException("one share per x-coordinate is needed");
    }
    if (xs.length == 0) {
      throw new ShamirException("no shares to reconstruct from");
    }
    BigInteger secret = BigInteger.ZERO;
    for (int i = 0; i < xs.length; i++) {
      BigInteger yi = ys[i];
      if (yi == null || yi.signum() < 0 || yi.compareTo(PRIME) >= 0) {
        throw new ShamirException("a share is not a field element");
      }
      BigInteger xi = BigInteger.valueOf(xs[i]);
      BigInteger num = BigInteger.ONE;
      BigInteger den = BigInteger.ONE;
      for (int j = 0; j < xs.length; j++) {
        if (j != i) {
          BigInteger xj = BigInteger.valueOf(xs[j]);
          num = num.multiply(xj).mod(PRIME);
          den = den.multiply(xj.subtract(xi)).mod(PRIME);
        }
      }
      secret = secret.add(yi.multiply(num).mod(PRIME).multiply(den.modInverse(PRIME))).mod(PRIME);
    }
    if (secret.bitLength() > 8 * SECRET_SIZE) {
      throw new ShamirException(
          "the shares do not interpolate to a 32-byte secret (a bad share)");
    }
    return fixed(secret, SECRET_SIZE);
  }

  /** A share as {@link #SHARE_SIZE} big-endian bytes. */
  public static byte[] encodeShare(BigInteger value) {
    if (value == null || value.signum() < 0 || value.compareTo(PRIME) >= 0) {
      throw new ShamirException("a share must be a field element");
    }
    return fixed(value, SHARE_SIZE);
  }

  /** Inverse of {@link #encodeShare}; refuses the wrong length or a value outside the field. */
  public static BigInteger decodeShare(byte[] data) {
    return decodeShare(data, 0, data == null ? 0 : data.length);
  }

  /** {@link #decodeShare(byte[])} of {@code data[offset, offset + length)}. */
  public static BigInteger decodeShare(byte[] data, int offset, int length) {
    if (data == null || length != SHARE_SIZE || offset < 0 || offset + length > data.length) {
      throw new ShamirException("a share must be " + SHARE_SIZE + " bytes");
    }
    byte[] copy = new byte[SHARE_SIZE];
    System.arraycopy(data, offset, copy, 0, SHARE_SIZE);
    BigInteger value = new BigInteger(1, copy);
    java.util.Arrays.fill(copy, (byte) 0);
    if (value.compareTo(PRIME) >= 0) {
      throw new ShamirException("a share is not a field element");
    }
    return value;
  }

  private static void checkXs(long[] xs) {
    if (xs == null) {
      throw new ShamirException("x-coordinates must be given");
    }
    Set<Long> seen = new HashSet<>();
    for (long x : xs) {
      if (x < 1 || x >= MAX_X) {
        throw new ShamirException("x-coordinates must be ints in [1, 2^32), got " + x);
      }
      if (!seen.add(x)) {
        throw new ShamirException("x-coordinates must be distinct");
      }
    }
  }

  /** {@code value} (non-negative, at most {@code size} bytes) as {@code size} big-endian bytes. */
  private static byte[] fixed(BigInteger value, int size) {
    byte[] raw = value.toByteArray(); // may carry a leading sign byte
    byte[] out = new byte[size];
    int copy = Math.min(raw.length, size);
    System.arraycopy(raw, raw.length - copy, out, size - copy, copy);
    java.util.Arrays.fill(raw, (byte) 0);
    return out;
  }
}
