package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.security.SecureRandom;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** Seal/open, tamper detection, key pairs and their agreement. */
class SecAggCryptoTest {
  private static final SecureRandom RANDOM = new SecureRandom();

  private static byte[] random(int size) {
    byte[] out = new byte[size];
    RANDOM.nextBytes(out);
    return out;
  }

  @Test
  void sealThenOpenRoundTrips() throws Exception {
    byte[] key = random(32);
    byte[] ctx = SecAggCrypto.roundContext("job", 4);
    byte[] plain = random(2 * Shamir.SHARE_SIZE);
    byte[] sealed = SecAggCrypto.seal(key, ctx, 3, 8, plain, RANDOM);
    assertEquals(SecAggCrypto.SEALED_SIZE, sealed.length);
    assertArrayEquals(plain, SecAggCrypto.open(key, ctx, 3, 8, sealed));
    // a fresh nonce each time
    assertFalse(Arrays.equals(sealed, SecAggCrypto.seal(key, ctx, 3, 8, plain, RANDOM)));
  }

  @Test
  void tamperingOrRelayingFailsAuthentication() {
    byte[] key = random(32);
    byte[] ctx = SecAggCrypto.roundContext("job", 4);
    byte[] sealed = SecAggCrypto.seal(key, ctx, 3, 8, random(132), RANDOM);
    for (int at : new int[] {0, 11, 12, 80, sealed.length - 1}) { // nonce, body, tag
      byte[] bad = sealed.clone();
      bad[at] ^= 1;
      assertThrows(ShareAuthenticationException.class, () -> SecAggCrypto.open(key, ctx, 3, 8, bad));
    }
    ShareAuthenticationException relayed =
        assertThrows(ShareAuthenticationException.class, () -> SecAggCrypto.open(key, ctx, 3, 9, sealed));
    assertEquals("the share from client 3 to client 9 failed authentication", relayed.getMessage());
    assertThrows(ShareAuthenticationException.class, () -> SecAggCrypto.open(key, ctx, 8, 3, sealed));
    byte[] otherRound = SecAggCrypto.roundContext("job", 5);
    assertThrows(ShareAuthenticationException.class, () -> SecAggCrypto.open(key, otherRound, 3, 8, sealed));
    byte[] otherJob = SecAggCrypto.roundContext("job2", 4);
    assertThrows(ShareAuthenticationException.class, () -> SecAggCrypto.open(key, otherJob, 3, 8, sealed));
    assertThrows(ShareAuthenticationException.class, () -> SecAggCrypto.open(random(32), ctx, 3, 8, sealed));
    ShareAuthenticationException truncated =
        assertThrows(
            ShareAuthenticationException.class,
            () -> SecAggCrypto.open(key, ctx, 3, 8, Arrays.copyOf(sealed, 28)));
    assertTrue(truncated.getMessage().contains("truncated"));
  }

  @Test
  void bothEndsAgreeOnFreshKeys() throws Exception {
    SecAggCrypto.RoundKeys a = SecAggCrypto.RoundKeys.generate(RANDOM);
    SecAggCrypto.RoundKeys b = SecAggCrypto.RoundKeys.generate(RANDOM);
    byte[] ctx = SecAggCrypto.roundContext("job", 1);
    assertArrayEquals(
        SecAggCrypto.pairSeed(a.maskPrivate(), b.maskPublic(), ctx, 2, 5),
        SecAggCrypto.pairSeed(b.maskPrivate(), a.maskPublic(), ctx, 5, 2));
    assertArrayEquals(
        SecAggCrypto.shareKey(a.cipherPrivate(), b.cipherPublic(), ctx, 2, 5),
        SecAggCrypto.shareKey(b.cipherPrivate(), a.cipherPublic(), ctx, 5, 2));
    assertFalse(
        Arrays.equals(
            SecAggCrypto.pairSeed(a.maskPrivate(), b.maskPublic(), ctx, 2, 5),
            SecAggCrypto.shareKey(a.maskPrivate(), b.maskPublic(), ctx, 2, 5)));
    assertNotEquals(Arrays.toString(a.cipherPublic()), Arrays.toString(a.maskPublic()));
    assertArrayEquals(SecAggCrypto.publicKeyOf(a.maskPrivate()), a.maskPublic());
    // clamped like RFC 7748 / OpenSSL keys
    assertEquals(0, a.maskPrivate()[0] & 7);
    assertEquals(0x40, a.maskPrivate()[31] & 0xC0);
  }

  @Test
  void keysAreHiddenAndWiped() {
    SecAggCrypto.RoundKeys keys = SecAggCrypto.RoundKeys.generate(RANDOM);
    assertEquals("RoundKeys(<hidden>)", keys.toString());
    keys.destroy();
    assertArrayEquals(new byte[32], keys.maskPrivate());
    assertArrayEquals(new byte[32], keys.cipherPrivate());
    assertEquals("EncryptedShare(1 -> 2, <sealed>)", new EncryptedShare(1, 2, new byte[160]).toString());
  }

  @Test
  void smallOrderAndMalformedPeerKeysAreRefused() {
    byte[] own = SecAggCrypto.RoundKeys.generate(RANDOM).maskPrivate();
    byte[] ctx = SecAggCrypto.roundContext("job", 1);
    SecAggProtocolException zero =
        assertThrows(
            SecAggProtocolException.class, () -> SecAggCrypto.pairSeed(own, new byte[32], ctx, 1, 2));
    assertEquals("a peer's public key is not a valid X25519 key", zero.getMessage());
    byte[] one = new byte[32];
    one[0] = 1; // order 1
    assertThrows(SecAggProtocolException.class, () -> SecAggCrypto.shareKey(own, one, ctx, 1, 2));
    assertThrows(SecAggProtocolException.class, () -> SecAggCrypto.pairSeed(own, new byte[31], ctx, 1, 2));
  }

  @Test
  void withoutAnX25519ProviderTheClientSaysWhatIsMissing() {
    java.security.Provider[] providers = java.security.Security.getProviders();
    int position = -1;
    for (int i = 0; i < providers.length; i++) {
      if (providers[i].getName().equals("SunEC")) {
        position = i + 1;
      }
    }
    org.junit.jupiter.api.Assumptions.assumeTrue(position > 0, "SunEC provides X25519 here");
    java.security.Provider sunEc = providers[position - 1];
    java.security.Security.removeProvider("SunEC");
    try {
      IllegalStateException err = assertThrows(IllegalStateException.class, SecAggCrypto::checkAvailable);
      assertTrue(err.getMessage().startsWith("X25519 is not available on this platform"), err.getMessage());
      assertTrue(err.getMessage().contains("Java 11+, Android 13 (API 33)+"), err.getMessage());
      assertThrows(IllegalStateException.class, () -> SecAggCrypto.RoundKeys.generate(RANDOM));
    } finally {
      java.security.Security.insertProviderAt(sunEc, position);
    }
    SecAggCrypto.checkAvailable();
  }

  @Test
  void theMaskSignCancelsPairs() {
    assertEquals(1, SecAggCrypto.maskSign(1, 2));
    assertEquals(-1, SecAggCrypto.maskSign(2, 1));
  }
}
