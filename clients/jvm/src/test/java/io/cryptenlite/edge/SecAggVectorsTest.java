package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/** Every known-answer vector of tests/vectors/secagg.json (tests/vectors/make_secagg.py). */
class SecAggVectorsTest {
  static Path path() {
    String configured = System.getProperty("cryptenlite.secaggVectors");
    return configured != null
        ? Paths.get(configured)
        : Paths.get("..", "..", "tests", "vectors", "secagg.json");
  }

  @SuppressWarnings("unchecked")
  static List<Map<String, Object>> section(String name) throws IOException {
    return (List<Map<String, Object>>) load().get(name);
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> load() throws IOException {
    String text = new String(Files.readAllBytes(path()), StandardCharsets.UTF_8);
    return (Map<String, Object>) Json.parse(text);
  }

  static String hex(byte[] data) {
    StringBuilder out = new StringBuilder();
    for (byte b : data) {
      out.append(String.format("%02x", b & 0xFF));
    }
    return out.toString();
  }

  private static byte[] bytes(Map<String, Object> v, String key) {
    return TestVectors.hex((String) v.get(key));
  }

  private static long number(Map<String, Object> v, String key) {
    double value = (Double) v.get(key);
    long exact = (long) value;
    assertEquals(value, (double) exact, key + " is not an exact integer");
    return exact;
  }

  @Test
  void theVectorFileHasEverySection() throws IOException {
    Map<String, Object> doc = load();
    for (String name : new String[] {"context", "pairs", "commitments", "shamir"}) {
      assertFalse(((List<?>) doc.get(name)).isEmpty(), name);
    }
    assertFalse(((Map<?, ?>) doc.get("sealed")).isEmpty());
  }

  @TestFactory
  List<DynamicTest> roundContext() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    for (Map<String, Object> v : section("context")) {
      String job = (String) v.get("job_id");
      long round = number(v, "round");
      tests.add(
          DynamicTest.dynamicTest(
              "context " + Text.clean(job, 20) + " round " + round,
              () -> assertEquals(v.get("context"), hex(SecAggCrypto.roundContext(job, round)))));
    }
    return tests;
  }

  @TestFactory
  List<DynamicTest> pairMaterialAgreesFromBothEnds() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    for (Map<String, Object> v : section("pairs")) {
      long u = number(v, "u");
      long w = number(v, "v");
      tests.add(
          DynamicTest.dynamicTest(
              "pair " + u + "/" + w,
              () -> {
                byte[] ctx = bytes(v, "context");
                byte[] skU = bytes(v, "private_u");
                byte[] skV = bytes(v, "private_v");
                assertEquals(v.get("public_u"), hex(SecAggCrypto.publicKeyOf(skU)));
                assertEquals(v.get("public_v"), hex(SecAggCrypto.publicKeyOf(skV)));
                long[] expectedMask = TestVectors.words(v.get("pair_mask_32"));
                // u's end with v's public key, then v's end with u's
                Object[][] ends = {
                  {skU, bytes(v, "public_v"), u, w}, {skV, bytes(v, "public_u"), w, u}
                };
                for (Object[] end : ends) {
                  byte[] own = (byte[]) end[0];
                  byte[] peer = (byte[]) end[1];
                  long a = (Long) end[2];
                  long b = (Long) end[3];
                  byte[] seed = SecAggCrypto.pairSeed(own, peer, ctx, a, b);
                  assertEquals(v.get("pair_seed"), hex(seed));
                  assertEquals(v.get("share_key"), hex(SecAggCrypto.shareKey(own, peer, ctx, a, b)));
                  assertEquals(
                      TestVectors.unsigned(expectedMask),
                      TestVectors.unsigned(SeedExpander.expand(seed, expectedMask.length, 32)));
                }
              }));
    }
    return tests;
  }

  @Test
  void theSealedShareOpens() throws Exception {
    Map<String, Object> s = sealed();
    byte[] key = bytes(s, "key");
    byte[] ctx = bytes(s, "context");
    long sender = number(s, "sender");
    long receiver = number(s, "receiver");
    byte[] sealedBytes = bytes(s, "sealed");
    byte[] plain = SecAggCrypto.open(key, ctx, sender, receiver, sealedBytes);
    assertEquals(s.get("plaintext"), hex(plain));
    // the same nonce and key seal to the same bytes (AES-GCM is deterministic given the nonce)
    byte[] nonce = java.util.Arrays.copyOf(sealedBytes, SecAggCrypto.GCM_NONCE_SIZE);
    assertEquals(s.get("sealed"), hex(SecAggCrypto.seal(key, ctx, sender, receiver, plain, nonce)));
    assertEquals(SecAggCrypto.SEALED_SIZE, sealedBytes.length);
    // the plaintext is two 66-byte shares: 12345 and p - 1
    assertEquals(BigInteger.valueOf(12345), Shamir.decodeShare(plain, 0, Shamir.SHARE_SIZE));
    assertEquals(
        Shamir.PRIME.subtract(BigInteger.ONE),
        Shamir.decodeShare(plain, Shamir.SHARE_SIZE, Shamir.SHARE_SIZE));
    // relayed to another receiver, it fails authentication
    assertThrows(
        ShareAuthenticationException.class,
        () -> SecAggCrypto.open(key, ctx, sender, receiver + 1, sealedBytes));
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> sealed() throws IOException {
    return (Map<String, Object>) load().get("sealed");
  }

  @TestFactory
  List<DynamicTest> commitments() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    for (Map<String, Object> v : section("commitments")) {
      long index = number(v, "index");
      tests.add(
          DynamicTest.dynamicTest(
              "commitment " + index,
              () ->
                  assertEquals(
                      v.get("commitment"),
                      hex(SecAggCrypto.commitSeed(bytes(v, "context"), index, bytes(v, "seed"))))));
    }
    return tests;
  }

  @TestFactory
  List<DynamicTest> anyThresholdSharesReconstruct() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    for (Map<String, Object> v : section("shamir")) {
      int t = (int) number(v, "threshold");
      List<?> xsList = (List<?>) v.get("xs");
      List<?> sharesList = (List<?>) v.get("shares");
      long[] xs = new long[xsList.size()];
      BigInteger[] ys = new BigInteger[xs.length];
      for (int i = 0; i < xs.length; i++) {
        xs[i] = (long) (double) (Double) xsList.get(i);
        byte[] encoded = TestVectors.hex((String) sharesList.get(i));
        ys[i] = Shamir.decodeShare(encoded);
        assertArrayEquals(encoded, Shamir.encodeShare(ys[i]));
      }
      String secret = (String) v.get("secret");
      for (int[] combo : combinations(xs.length, t)) {
        long[] cx = new long[t];
        BigInteger[] cy = new BigInteger[t];
        for (int i = 0; i < t; i++) {
          cx[i] = xs[combo[i]];
          cy[i] = ys[combo[i]];
        }
        tests.add(
            DynamicTest.dynamicTest(
                "shamir t=" + t + " xs=" + java.util.Arrays.toString(cx),
                () -> assertEquals(secret, hex(Shamir.reconstruct(cx, cy)))));
      }
    }
    return tests;
  }

  static List<int[]> combinations(int n, int k) {
    List<int[]> out = new ArrayList<>();
    int[] pick = new int[k];
    for (int i = 0; i < k; i++) {
      pick[i] = i;
    }
    while (true) {
      out.add(pick.clone());
      int i = k - 1;
      while (i >= 0 && pick[i] == n - k + i) {
        i--;
      }
      if (i < 0) {
        return out;
      }
      pick[i]++;
      for (int j = i + 1; j < k; j++) {
        pick[j] = pick[j - 1] + 1;
      }
    }
  }
}
