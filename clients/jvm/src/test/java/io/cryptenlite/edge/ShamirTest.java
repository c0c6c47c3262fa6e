package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigInteger;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Shamir sharing over GF(2^521 - 1): share, reconstruct, encodings, refusals. */
class ShamirTest {
  private static final SecureRandom RANDOM = new SecureRandom();

  private static byte[] secret() {
    byte[] s = new byte[32];
    RANDOM.nextBytes(s);
    return s;
  }

  @Test
  void anyThresholdSharesReconstructForSeveralShapes() {
    int[][] shapes = {{2, 2}, {2, 3}, {3, 5}, {4, 7}, {6, 10}, {11, 20}};
    Random pick = new Random(7);
    for (int[] shape : shapes) {
      int t = shape[0];
      int n = shape[1];
      long[] xs = new long[n];
      for (int i = 0; i < n; i++) {
        xs[i] = i == 0 ? (1L << 32) - 1 : 1 + i * 37L; // includes the largest x
      }
      byte[] s = secret();
      BigInteger[] ys = Shamir.share(s, xs, t, RANDOM);
      assertEquals(n, ys.length);
      for (int trial = 0; trial < 10; trial++) {
        int[] order = shuffled(n, pick);
        long[] cx = new long[t];
        BigInteger[] cy = new BigInteger[t];
        for (int i = 0; i < t; i++) {
          cx[i] = xs[order[i]];
          cy[i] = Shamir.decodeShare(Shamir.encodeShare(ys[order[i]]));
        }
        assertArrayEquals(s, Shamir.reconstruct(cx, cy), "t=" + t + " n=" + n);
      }
    }
  }

  @Test
  void moreThanThresholdSharesReconstructToo() {
    long[] xs = {1, 2, 3, 4, 5};
    byte[] s = secret();
    BigInteger[] ys = Shamir.share(s, xs, 3, RANDOM);
    assertArrayEquals(s, Shamir.reconstruct(xs, ys));
  }

  @Test
  void thresholdMinusOneSharesDoNotReconstruct() {
    long[] xs = {1, 2, 3, 4, 5, 6};
    for (int t = 2; t <= 6; t++) {
      byte[] s = secret();
      BigInteger[] ys = Shamir.share(s, xs, t, RANDOM);
      long[] cx = Arrays.copyOf(xs, t - 1);
      BigInteger[] cy = Arrays.copyOf(ys, t - 1);
      boolean recovered;
      try {
        recovered = Arrays.equals(s, Shamir.reconstruct(cx, cy));
      } catch (ShamirException err) { // almost always: not a 32-byte value
        recovered = false;
      }
      assertFalse(recovered, "t=" + t);
    }
  }

  @Test
  void sharesOfTheSameSecretDifferEachTime() {
    long[] xs = {1, 2, 3};
    byte[] s = secret();
    assertNotEquals(
        Arrays.asList(Shamir.share(s, xs, 2, RANDOM)), Arrays.asList(Shamir.share(s, xs, 2, RANDOM)));
  }

  @Test
  void aThresholdOfOneHandsOutTheSecret() {
    byte[] s = secret();
    BigInteger[] ys = Shamir.share(s, new long[] {4, 9}, 1, RANDOM);
    assertEquals(new BigInteger(1, s), ys[0]);
    assertEquals(ys[0], ys[1]);
  }

  @Test
  void aWrongShareIsCaught() {
    long[] xs = {1, 2, 3};
    byte[] s = secret();
    BigInteger[] ys = Shamir.share(s, xs, 3, RANDOM);
    // a small error moves the result by a small multiple and may go unnoticed (as in Python);
    // a share that is off by a random field element interpolates far outside 32 bytes
    ys[1] = new BigInteger(600, RANDOM).mod(Shamir.PRIME);
    ShamirException err = assertThrows(ShamirException.class, () -> Shamir.reconstruct(xs, ys));
    assertTrue(err.getMessage().contains("do not interpolate to a 32-byte secret"));
  }

  @Test
  void encodingsAreSixtySixBytesBigEndian() {
    assertEquals(66, Shamir.encodeShare(BigInteger.ZERO).length);
    byte[] top = Shamir.encodeShare(Shamir.PRIME.subtract(BigInteger.ONE));
    assertEquals(0x01, top[0]);
    assertEquals((byte) 0xFE, top[65]);
    assertThrows(ShamirException.class, () -> Shamir.encodeShare(Shamir.PRIME));
    assertThrows(ShamirException.class, () -> Shamir.encodeShare(BigInteger.ONE.negate()));
    byte[] prime = Shamir.encodeShare(Shamir.PRIME.subtract(BigInteger.ONE));
    prime[65] = (byte) 0xFF; // = p, outside the field
    assertThrows(ShamirException.class, () -> Shamir.decodeShare(prime));
    assertThrows(ShamirException.class, () -> Shamir.decodeShare(new byte[65]));
  }

  @Test
  void badArgumentsAreRefused() {
    byte[] s = secret();
    assertThrows(ShamirException.class, () -> Shamir.share(new byte[31], new long[] {1, 2}, 2, RANDOM));
    assertThrows(ShamirException.class, () -> Shamir.share(s, new long[] {1, 1}, 2, RANDOM));
    assertThrows(ShamirException.class, () -> Shamir.share(s, new long[] {0, 1}, 2, RANDOM));
    assertThrows(ShamirException.class, () -> Shamir.share(s, new long[] {1, 1L << 32}, 2, RANDOM));
    assertThrows(ShamirException.class, () -> Shamir.share(s, new long[] {1, 2}, 3, RANDOM));
    assertThrows(ShamirException.class, () -> Shamir.share(s, new long[] {1, 2}, 0, RANDOM));
    assertThrows(ShamirException.class, () -> Shamir.reconstruct(new long[0], new BigInteger[0]));
    assertThrows(
        ShamirException.class,
        () -> Shamir.reconstruct(new long[] {1, 2}, new BigInteger[] {BigInteger.ONE, Shamir.PRIME}));
  }

  private static int[] shuffled(int n, Random pick) {
    int[] order = new int[n];
    for (int i = 0; i < n; i++) {
      order[i] = i;
    }
    for (int i = n - 1; i > 0; i--) {
      int j = pick.nextInt(i + 1);
      int tmp = order[i];
      order[i] = order[j];
      order[j] = tmp;
    }
    return order;
  }
}
