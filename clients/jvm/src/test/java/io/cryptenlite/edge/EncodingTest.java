package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Clipping, NaN/infinity refusals, capacity and the quantization spec. */
class EncodingTest {
  private static final QuantSpec INT16 = QuantSpec.of("int16", 1.0);

  @Test
  void valuesBeyondTheClipAreClippedNotRefused() {
    long[] words = UpdateEncoder.encode(new double[] {7.5, -7.5, 1.0, -1.0}, INT16, 32);
    assertArrayEquals(new long[] {32767, 0x1_0000_0000L - 32767, 32767, 0x1_0000_0000L - 32767}, words);
  }

  @Test
  void negativeValuesWrapIntoTheRing() {
    assertArrayEquals(new long[] {-1L}, UpdateEncoder.encode(new double[] {-1.0 / 32767}, INT16, 64));
    assertArrayEquals(
        new long[] {0xFFFF_FFFFL}, UpdateEncoder.encode(new double[] {-1.0 / 32767}, INT16, 32));
  }

  @Test
  void roundingIsHalfToEven() {
    QuantSpec int8 = QuantSpec.of("int8", 127.0); // scale 1
    assertArrayEquals(
        new long[] {0, 2, 2, -2, -2},
        UpdateEncoder.encode(new double[] {0.5, 1.5, 2.5, -1.5, -2.5}, int8, 64));
  }

  @Test
  void nanAndInfinityAreRefused() {
    for (double bad : new double[] {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY}) {
      EncodingException err =
          assertThrows(
              EncodingException.class,
              () -> UpdateEncoder.encode(new double[] {0.1, bad}, INT16, 32));
      assertEquals("the update x contains NaN or infinity", err.getMessage());
    }
    assertThrows(EncodingException.class, () -> FixedPoint.encode(new double[] {Double.NaN}, 16));
  }

  @Test
  void floatUpdatesEncodeLikeTheirDoubles() {
    float[] x = {0.1f, -0.3f, 0.99f};
    assertArrayEquals(
        UpdateEncoder.encode(new double[] {0.1f, -0.3f, 0.99f}, INT16, 32),
        UpdateEncoder.encode(x, INT16, 32));
  }

  @Test
  void fixedPointRangeIsChecked() {
    double max = FixedPoint.maxAbs(16);
    assertEquals(Math.scalb((double) ((1L << 62) - (1L << 9)), -16), max);
    FixedPoint.encode(new double[] {max, -max}, 16);
    assertThrows(EncodingException.class, () -> FixedPoint.encode(new double[] {2 * max}, 16));
    assertThrows(EncodingException.class, () -> FixedPoint.encode(new double[] {1}, 53));
  }

  @Test
  void fixedPointDecodesTheSignedView() {
    assertArrayEquals(
        new double[] {1.5, -0.25, 0.0},
        FixedPoint.decode(FixedPoint.encode(new double[] {1.5, -0.25, 0.0}, 16), 16),
        0.0);
  }

  @Test
  void capacityMatchesThePythonFormula() {
    assertEquals(((1L << 31) - 1) / 32767, INT16.maxClients(32));
    assertEquals(((1L << 31) - 1) / 127, QuantSpec.of("int8", 0.5).maxClients(32));
    assertEquals(((1L << 31) - 1) / 65536, QuantSpec.of("fixed16", 1.0).maxClients(32));
    assertEquals(Long.MAX_VALUE / 65536, QuantSpec.of("fixed16", 1.0).maxClients(64));
    INT16.checkCapacity(32, 65538);
    EncodingException err =
        assertThrows(EncodingException.class, () -> INT16.checkCapacity(32, 65539));
    assertTrue(err.getMessage().contains("at most 65538 int16 updates with clip 1;"), err.getMessage());
  }

  @Test
  void aClipThatDoesNotFitTheRingIsRefused() {
    QuantSpec huge = QuantSpec.of("fixed16", 1e6); // qmax = 2^16 * 1e6 > 2^31
    assertEquals(0, huge.maxClients(32));
    assertThrows(EncodingException.class, () -> UpdateEncoder.encode(new double[] {0}, huge, 32));
    assertEquals(0, QuantSpec.of("fixed16", 1e300).maxClients(64));
  }

  @Test
  void badSpecsAndRingsAreRefused() {
    assertThrows(EncodingException.class, () -> QuantSpec.of("int4", 1.0));
    assertThrows(EncodingException.class, () -> QuantSpec.of("int8", 0.0));
    assertThrows(EncodingException.class, () -> QuantSpec.of("int8", -1.0));
    assertThrows(EncodingException.class, () -> QuantSpec.of("int8", Double.NaN));
    assertThrows(EncodingException.class, () -> QuantSpec.of("int8", Double.POSITIVE_INFINITY));
    assertThrows(
        IllegalArgumentException.class, () -> UpdateEncoder.encode(new double[] {0}, INT16, 16));
  }

  @Test
  void weightedPackingChecksTheWeight() {
    assertArrayEquals(
        new double[] {0.125, -0.25, 0.5}, WeightedUpdate.pack(new double[] {0.25, -0.5}, 0.5), 0.0);
    assertThrows(IllegalArgumentException.class, () -> WeightedUpdate.pack(new double[] {1}, 0));
    assertThrows(IllegalArgumentException.class, () -> WeightedUpdate.pack(new double[] {1}, 1.5));
    assertThrows(
        IllegalArgumentException.class, () -> WeightedUpdate.pack(new double[] {1}, Double.NaN));
  }
}
