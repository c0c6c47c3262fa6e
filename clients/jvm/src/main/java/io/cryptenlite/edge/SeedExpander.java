package io.cryptenlite.edge;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The share a 32-byte seed stands for, exactly as the servers rebuild it
 * ({@code crypten_lite.edge.shares.expand_seed}):
 *
 * <ol>
 *   <li>{@code key || counter = HKDF-SHA256(ikm = seed, salt = "crypten_lite.prg.seed.v1",
 *       info = "crypten_lite.prg.from_seed.v1", length = 32)};
 *   <li>the AES-128 key is the first 16 bytes, the initial 128-bit big-endian counter block the
 *       last 16 ({@code AES/CTR/NoPadding} with that IV);
 *   <li>the keystream (AES-CTR over zeros) read as little-endian uint32 (32-bit ring) or uint64
 *       (64-bit ring) elements.
 * </ol>
 *
 * <p>Secret: the seed and everything derived from it (the key, the keystream, the expanded
 * share). Nothing here logs or keeps them; derived key bytes are wiped after use.
 */
public final class SeedExpander {
  /** Seed length in bytes. */
  public static final int SEED_SIZE = 32;

  static final byte[] SEED_SALT = "crypten_lite.prg.seed.v1".getBytes(StandardCharsets.US_ASCII);
  static final byte[] SEED_INFO =
      "crypten_lite.prg.from_seed.v1".getBytes(StandardCharsets.US_ASCII);
  private static final int CHUNK = 1 << 16;

  private SeedExpander() {}

  /**
   * {@code numElements} ring elements of the seed's keystream ({@code ringBits} 32 or 64).
   *
   * @throws IllegalArgumentException for a seed that is not 32 bytes or a negative count
   */
  public static long[] expand(byte[] seed, int numElements, int ringBits) {
    int width = RingWords.width(ringBits);
    if (seed == null || seed.length != SEED_SIZE) {
      throw new IllegalArgumentException("seed must be " + SEED_SIZE + " bytes");
    }
    if (numElements < 0) {
      throw new IllegalArgumentException("num_elements must be >= 0, got " + numElements);
    }
    byte[] okm = hkdfSha256(seed, SEED_SALT, SEED_INFO, 32);
    long[] out = new long[numElements];
    try {
      Cipher aes = Cipher.getInstance("AES/CTR/NoPadding");
      aes.init(
          Cipher.ENCRYPT_MODE,
          new SecretKeySpec(okm, 0, 16, "AES"),
          new IvParameterSpec(okm, 16, 16));
      int perChunk = CHUNK / width;
      byte[] zeros = new byte[CHUNK];
      byte[] stream = new byte[CHUNK];
      int index = 0;
      while (index < numElements) {
        int count = Math.min(perChunk, numElements - index);
        int bytes = count * width;
        int written = aes.update(zeros, 0, bytes, stream, 0);
        if (written != bytes) {
          throw new IllegalStateException("AES-CTR returned " + written + " of " + bytes + " bytes");
        }
        ByteBuffer in = ByteBuffer.wrap(stream, 0, bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < count; i++) {
          out[index + i] = width == 8 ? in.getLong() : in.getInt() & 0xFFFFFFFFL;
        }
        index += count;
      }
      Arrays.fill(stream, (byte) 0);
    } catch (GeneralSecurityException err) {
      throw new IllegalStateException("AES/CTR/NoPadding is not available", err);
    } finally {
      Arrays.fill(okm, (byte) 0);
    }
    return out;
  }

  /** RFC 5869 HKDF with HMAC-SHA256 (extract then expand). */
  static byte[] hkdfSha256(byte[] ikm, byte[] salt, byte[] info, int length) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(salt.length == 0 ? new byte[32] : salt, "HmacSHA256"));
      byte[] prk = mac.doFinal(ikm);
      mac.init(new SecretKeySpec(prk, "HmacSHA256"));
      Arrays.fill(prk, (byte) 0);
      byte[] okm = new byte[length];
      byte[] block = new byte[0];
      int filled = 0;
      for (int counter = 1; filled < length; counter++) {
        mac.update(block);
        mac.update(info);
        mac.update((byte) counter);
        block = mac.doFinal();
        int take = Math.min(block.length, length - filled);
        System.arraycopy(block, 0, okm, filled, take);
        filled += take;
      }
      Arrays.fill(block, (byte) 0);
      return okm;
    } catch (GeneralSecurityException err) {
      throw new IllegalStateException("HmacSHA256 is not available", err);
    }
  }
}
