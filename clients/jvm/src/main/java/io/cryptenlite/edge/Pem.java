package io.cryptenlite.edge;

import java.io.ByteArrayOutputStream;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Arrays;

/**
 * Reading a PKCS#8 PEM private key ({@code -----BEGIN PRIVATE KEY-----}, as {@code crypten-lite
 * certs} writes them: EC P-256) with the platform's {@code KeyFactory} only, so the same code
 * runs on a JVM and on Android (no {@code java.util.Base64}, which Android has from API 26).
 *
 * <p>Secret: the key. Decoded bytes are wiped after the key object is built.
 */
final class Pem {
  private Pem() {}

  static PrivateKey privateKey(String pem) throws GeneralSecurityException {
    if (pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
      throw new GeneralSecurityException("encrypted private keys are not supported");
    }
    if (pem.contains("-----BEGIN EC PRIVATE KEY-----")
        || pem.contains("-----BEGIN RSA PRIVATE KEY-----")) {
      throw new GeneralSecurityException(
          "the key is not PKCS#8: convert it with `openssl pkcs8 -topk8 -nocrypt`");
    }
    byte[] der = block(pem, "PRIVATE KEY");
    PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
    try {
      for (String algorithm : new String[] {"EC", "RSA"}) {
        try {
          return KeyFactory.getInstance(algorithm).generatePrivate(spec);
        } catch (InvalidKeySpecException err) {
          // try the next algorithm
        }
      }
      throw new GeneralSecurityException("the PKCS#8 key is neither EC nor RSA");
    } finally {
      Arrays.fill(der, (byte) 0);
    }
  }

  /** The DER bytes of the first {@code -----BEGIN <label>-----} block. */
  static byte[] block(String pem, String label) throws GeneralSecurityException {
    String begin = "-----BEGIN " + label + "-----";
    String end = "-----END " + label + "-----";
    int start = pem.indexOf(begin);
    int stop = start < 0 ? -1 : pem.indexOf(end, start);
    if (start < 0 || stop < 0) {
      throw new GeneralSecurityException("no " + label + " PEM block found");
    }
    return base64(pem.substring(start + begin.length(), stop));
  }

  /** Standard base64 (RFC 4648), whitespace ignored. */
  static byte[] base64(String text) throws GeneralSecurityException {
    ByteArrayOutputStream out = new ByteArrayOutputStream(text.length() * 3 / 4);
    int buffer = 0;
    int bits = 0;
    boolean padded = false;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        continue;
      }
      if (c == '=') {
        padded = true;
        continue;
      }
      int value = decodeChar(c);
      if (value < 0 || padded) {
        throw new GeneralSecurityException("the PEM block is not valid base64");
      }
      buffer = (buffer << 6) | value;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out.write((buffer >> bits) & 0xFF);
      }
    }
    return out.toByteArray();
  }

  private static int decodeChar(char c) {
    if (c >= 'A' && c <= 'Z') {
      return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
      return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
      return c - '0' + 52;
    }
    if (c == '+') {
      return 62;
    }
    if (c == '/') {
      return 63;
    }
    return -1;
  }
}
