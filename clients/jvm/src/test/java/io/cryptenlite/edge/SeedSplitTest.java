package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.security.SecureRandom;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** masked + sum(expand(seed_i)) = values (mod 2^bits), for every ring and server count. */
class SeedSplitTest {
  private final SecureRandom random = new SecureRandom();

  static long[] reconstruct(SeedSplit split, int n) {
    long[] total = split.masked();
    for (int i = 0; i < split.numServers() - 1; i++) {
      long[] stream = SeedExpander.expand(split.seed(i), n, split.ringBits());
      for (int j = 0; j < n; j++) {
        total[j] = RingWords.reduce(total[j] + stream[j], split.ringBits());
      }
    }
    return total;
  }

  @Test
  void sharesReconstructTheValues() {
    Random values = new Random(5);
    for (int bits : new int[] {32, 64}) {
      for (int k = 2; k <= SeedSplit.MAX_SERVERS; k++) {
        long[] x = new long[37];
        for (int i = 0; i < x.length; i++) {
          x[i] = RingWords.reduce(values.nextLong(), bits);
        }
        x[0] = 0;
        x[1] = RingWords.reduce(-1L, bits);
        SeedSplit split = SeedSplit.split(x, k, bits, random);
        assertEquals(k, split.numServers());
        assertArrayEquals(x, reconstruct(split, x.length), "bits=" + bits + " k=" + k);
        for (long word : split.masked()) {
          assertEquals(RingWords.reduce(word, bits), word);
        }
      }
    }
  }

  @Test
  void seedsAreFreshAndTheMaskHidesTheValues() {
    long[] zeros = new long[16];
    Set<String> seen = new HashSet<>();
    for (int round = 0; round < 20; round++) {
      SeedSplit split = SeedSplit.split(zeros, 3, 64, random);
      for (int i = 0; i < 2; i++) {
        assertEquals(32, split.seed(i).length);
        assertTrue(seen.add(Arrays.toString(split.seed(i))));
      }
      assertFalse(Arrays.equals(zeros, split.masked()));
    }
  }

  @Test
  void expandingIsDeterministicAndPrefixStable() {
    byte[] seed = new byte[32];
    seed[3] = 7;
    long[] long64 = SeedExpander.expand(seed, 100, 64);
    assertArrayEquals(Arrays.copyOf(long64, 10), SeedExpander.expand(seed, 10, 64));
    long[] words32 = SeedExpander.expand(seed, 200, 32);
    for (int i = 0; i < 100; i++) { // one uint64 = two little-endian uint32
      assertEquals(long64[i] & 0xFFFFFFFFL, words32[2 * i]);
      assertEquals(long64[i] >>> 32, words32[2 * i + 1]);
    }
    // across the expander's internal 64 KiB chunks
    long[] big = SeedExpander.expand(seed, 20_000, 64);
    assertArrayEquals(long64, Arrays.copyOf(big, 100));
    assertEquals(0, SeedExpander.expand(seed, 0, 32).length);
  }

  @Test
  void badInputsAreRefused() {
    assertThrows(IllegalArgumentException.class, () -> SeedExpander.expand(new byte[31], 1, 64));
    assertThrows(IllegalArgumentException.class, () -> SeedExpander.expand(new byte[32], -1, 64));
    assertThrows(IllegalArgumentException.class, () -> SeedExpander.expand(new byte[32], 1, 48));
    assertThrows(IllegalArgumentException.class, () -> SeedSplit.split(new long[1], 1, 64, random));
    assertThrows(IllegalArgumentException.class, () -> SeedSplit.split(new long[1], 9, 64, random));
    assertThrows(
        IllegalArgumentException.class, () -> SeedSplit.split(new long[] {1L << 32}, 2, 32, random));
  }

  @Test
  void nothingSecretIsPrinted() {
    SeedSplit split = SeedSplit.split(new long[] {42}, 2, 64, random);
    assertEquals("SeedSplit(servers=2, ring_bits=64, <hidden>)", split.toString());
    assertEquals(
        "TokenCredentials(client-1, <token hidden>)",
        new TokenCredentials("client-1", "v2.123.abcdef").toString());
  }

  @Test
  void ringBytesAreLittleEndian() {
    assertArrayEquals(
        new byte[] {1, 0, 0, 0, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF},
        RingWords.toBytes(new long[] {1, 0xFFFFFFFFL}, 32));
    assertArrayEquals(new long[] {1, 0xFFFFFFFFL}, RingWords.fromBytes(RingWords.toBytes(new long[] {1, 0xFFFFFFFFL}, 32), 32));
    assertArrayEquals(new long[] {-2L}, RingWords.fromBytes(RingWords.toBytes(new long[] {-2L}, 64), 64));
    assertThrows(IllegalArgumentException.class, () -> RingWords.fromBytes(new byte[5], 32));
  }
}
