package io.cryptenlite.edge;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Ring elements of Z_2^32 or Z_2^64 held in a {@code long[]} (a 32-bit element is kept in the
 * low 32 bits, the high bits zero), and their wire form: raw little-endian bytes ("&lt;u4" or
 * "&lt;u8"). Pure arithmetic: nothing here is secret or public by itself; the caller decides.
 */
public final class RingWords {
  /** The ring widths a job may use. */
  public static final int BITS_32 = 32;

  public static final int BITS_64 = 64;

  private RingWords() {}

  /** Throws IllegalArgumentException unless {@code ringBits} is 32 or 64. */
  public static int checkBits(int ringBits) {
    if (ringBits != BITS_32 && ringBits != BITS_64) {
      throw new IllegalArgumentException("ring_bits must be 32 or 64, got " + ringBits);
    }
    return ringBits;
  }

  /** Bytes per element: 4 or 8. */
  public static int width(int ringBits) {
    return checkBits(ringBits) / 8;
  }

  /** {@code value mod 2^ringBits}. */
  public static long reduce(long value, int ringBits) {
    return checkBits(ringBits) == BITS_64 ? value : value & 0xFFFFFFFFL;
  }

  /** The elements as little-endian bytes, {@code width(ringBits)} bytes each. */
  public static byte[] toBytes(long[] words, int ringBits) {
    int width = width(ringBits);
    if (words.length > Integer.MAX_VALUE / width) {
      throw new IllegalArgumentException("too many elements for one byte array");
    }
    ByteBuffer out = ByteBuffer.allocate(words.length * width);
    out.order(ByteOrder.LITTLE_ENDIAN);
    for (long word : words) {
      if (width == 8) {
        out.putLong(word);
      } else {
        out.putInt((int) word);
      }
    }
    return out.array();
  }

  /** Little-endian bytes back to elements; the length must be a multiple of the width. */
  public static long[] fromBytes(byte[] data, int ringBits) {
    int width = width(ringBits);
    if (data.length % width != 0) {
      throw new IllegalArgumentException(
          data.length + " bytes is not a whole number of " + ringBits + "-bit elements");
    }
    ByteBuffer in = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    long[] out = new long[data.length / width];
    for (int i = 0; i < out.length; i++) {
      out[i] = width == 8 ? in.getLong() : in.getInt() & 0xFFFFFFFFL;
    }
    return out;
  }
}
