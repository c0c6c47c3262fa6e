package io.cryptenlite.edge;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.InvalidKeyException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.KeyAgreement;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The cryptography of single-server secure aggregation, byte for byte as {@code
 * crypten_lite.edge.secagg_crypto} (the known answers of {@code tests/vectors/secagg.json}).
 *
 * <ul>
 *   <li>{@code context = SHA-256("crypten-lite/v1/secagg" || len(job) (4 bytes BE) || job
 *       (UTF-8) || round (8 bytes BE))}: every key of a round is bound to it;
 *   <li>per round a client makes two X25519 key pairs (RFC 7748): the cipher pair encrypts the
 *       Shamir shares it sends, the mask pair agrees the pairwise masks;
 *   <li>{@code pairSeed / shareKey = HKDF-SHA256(X25519(own, peer), salt = context, info =
 *       "crypten-lite/v1/secagg/pair|share/<min(u,v)>/<max(u,v)>")}, 32 bytes; both ends
 *       derive the same;
 *   <li>a sealed pair of shares is {@code nonce (12 random bytes) || AES-256-GCM(key,
 *       plaintext, aad = context || sender (4 bytes BE) || receiver (4 bytes BE))};
 *   <li>the self-mask seed is committed to with {@code SHA-256(context || index (4 bytes BE) ||
 *       seed)}.
 * </ul>
 *
 * <p><b>Platform.</b> X25519 comes from the JCA by name ({@code KeyFactory} and {@code
 * KeyAgreement} "X25519", else "XDH", with X.509/PKCS#8 encodings), so this class compiles for
 * Java 8 but needs at run time Java 11+ (JEP 324), Android 13 (API 33)+, or an installed
 * provider that offers X25519 (e.g. BouncyCastle); otherwise {@link #checkAvailable()} and
 * every X25519 call throw {@link IllegalStateException}. AES-GCM, SHA-256 and HMAC-SHA256 are
 * available everywhere (Android API 19+).
 *
 * <p>Secret: private keys, the self-mask seed, pair seeds, share keys, plaintext shares. Nothing
 * here logs or keeps them; {@link RoundKeys#toString()} hides them and {@link
 * RoundKeys#destroy()} wipes them.
 */
public final class SecAggCrypto {
  /** Bytes of an X25519 key, a pair seed, a share key and a commitment. */
  public static final int KEY_SIZE = 32;
  /** Bytes of an AES-GCM nonce. */
  public static final int GCM_NONCE_SIZE = 12;
  /** Bytes of an AES-GCM tag. */
  public static final int TAG_SIZE = 16;
  /** Bytes of one sealed pair of shares: nonce + two 66-byte shares + tag = 160. */
  public static final int SEALED_SIZE = GCM_NONCE_SIZE + 2 * Shamir.SHARE_SIZE + TAG_SIZE;

  static final byte[] DOMAIN = "crypten-lite/v1/secagg".getBytes(StandardCharsets.US_ASCII);
  // RFC 8410 encodings of an X25519 key: SubjectPublicKeyInfo / PKCS#8 (v1) around 32 raw bytes
  private static final byte[] SPKI_PREFIX = hex("302a300506032b656e032100");
  private static final byte[] PKCS8_PREFIX = hex("302e020100300506032b656e04220420");
  private static final String[] X25519_NAMES = {"X25519", "XDH"};

  /** What to tell a caller on a platform without X25519. */
  static final String UNAVAILABLE =
      "X25519 is not available on this platform: single-server secure aggregation needs Java 11+,"
          + " Android 13 (API 33)+, or a JCA provider with X25519 (e.g. BouncyCastle)";

  private SecAggCrypto() {}

  /** The 32-byte value every key of round {@code round} (unsigned) of job {@code jobId} is bound to. */
  public static byte[] roundContext(String jobId, long round) {
    byte[] job = jobId.getBytes(StandardCharsets.UTF_8);
    ByteBuffer framed = ByteBuffer.allocate(DOMAIN.length + 4 + job.length + 8);
    framed.put(DOMAIN).putInt(job.length).put(job).putLong(round);
    return sha256(framed.array());
  }

  /** {@code +1} if {@code u < v} else {@code -1}: the sign of {@code PRG(s_uv)} in u's masked input. */
  public static int maskSign(long u, long v) {
    return u < v ? 1 : -1;
  }

  /**
   * Throws {@link IllegalStateException} (with what the platform lacks) unless X25519 key
   * factories and key agreements are available.
   */
  public static void checkAvailable() {
    keyFactory();
    keyAgreement();
  }

  /** The raw public key of a raw 32-byte private key: X25519(private, 9). */
  public static byte[] publicKeyOf(byte[] rawPrivate) {
    byte[] base = new byte[KEY_SIZE];
    base[0] = 9;
    try {
      return x25519(rawPrivate, base);
    } catch (SecAggProtocolException err) {
      throw new IllegalStateException("X25519 refused the base point", err);
    }
  }

  /**
   * The raw X25519 shared secret of {@code rawPrivate} and {@code peerPublic}.
   *
   * @throws SecAggProtocolException if the peer's key is not 32 bytes or is a small-order point
   *     (the shared secret would be zero)
   */
  static byte[] x25519(byte[] rawPrivate, byte[] peerPublic) throws SecAggProtocolException {
    if (rawPrivate == null || rawPrivate.length != KEY_SIZE) {
      throw new IllegalArgumentException("an X25519 private key must be " + KEY_SIZE + " bytes");
    }
    if (peerPublic == null || peerPublic.length != KEY_SIZE) {
      throw new SecAggProtocolException("a peer's public key must be " + KEY_SIZE + " bytes");
    }
    KeyFactory factory = keyFactory();
    KeyAgreement agreement = keyAgreement();
    byte[] pkcs8 = concat(PKCS8_PREFIX, rawPrivate);
    PrivateKey own;
    PublicKey peer;
    try {
      own = factory.generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
      peer = factory.generatePublic(new X509EncodedKeySpec(concat(SPKI_PREFIX, peerPublic)));
    } catch (GeneralSecurityException err) {
      throw new SecAggProtocolException("a peer's public key is not a valid X25519 key");
    } finally {
      Arrays.fill(pkcs8, (byte) 0);
    }
    byte[] secret;
    try {
      agreement.init(own);
      agreement.doPhase(peer, true);
      secret = agreement.generateSecret();
    } catch (InvalidKeyException | IllegalStateException err) {
      // JDK: "Point has small order" (an all-zero shared secret)
      throw new SecAggProtocolException("a peer's public key is not a valid X25519 key");
    }
    boolean zero = true;
    for (byte b : secret) {
      zero &= b == 0;
    }
    if (zero || secret.length != KEY_SIZE) {
      throw new SecAggProtocolException("a peer's public key is not a valid X25519 key");
    }
    return secret;
  }

  /** The 32-byte seed of the pairwise mask between clients {@code u} and {@code v}. */
  public static byte[] pairSeed(byte[] ownPrivate, byte[] peerPublic, byte[] context, long u, long v)
      throws SecAggProtocolException {
    return derive(ownPrivate, peerPublic, context, "pair", u, v);
  }

  /** The AES-256-GCM key of the share channel between clients {@code u} and {@code v}. */
  public static byte[] shareKey(byte[] ownPrivate, byte[] peerPublic, byte[] context, long u, long v)
      throws SecAggProtocolException {
    return derive(ownPrivate, peerPublic, context, "share", u, v);
  }

  private static byte[] derive(
      byte[] ownPrivate, byte[] peerPublic, byte[] context, String label, long a, long b)
      throws SecAggProtocolException {
    byte[] secret = x25519(ownPrivate, peerPublic);
    long lo = Math.min(a, b);
    long hi = Math.max(a, b);
    byte[] info =
        concat(DOMAIN, ("/" + label + "/" + lo + "/" + hi).getBytes(StandardCharsets.US_ASCII));
    try {
      return SeedExpander.hkdfSha256(secret, context, info, KEY_SIZE);
    } finally {
      Arrays.fill(secret, (byte) 0);
    }
  }

  /**
   * {@code nonce || AES-256-GCM(key, plaintext)} bound to the round ({@code context}) and both
   * indices; the nonce is 12 fresh bytes of {@code random}.
   */
  public static byte[] seal(
      byte[] key, byte[] context, long sender, long receiver, byte[] plaintext, SecureRandom random) {
    byte[] nonce = new byte[GCM_NONCE_SIZE];
    random.nextBytes(nonce);
    return seal(key, context, sender, receiver, plaintext, nonce);
  }

  /** {@link #seal(byte[], byte[], long, long, byte[], SecureRandom)} with a given nonce (tests). */
  static byte[] seal(
      byte[] key, byte[] context, long sender, long receiver, byte[] plaintext, byte[] nonce) {
    checkKey(key);
    try {
      Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
      gcm.init(
          Cipher.ENCRYPT_MODE,
          new SecretKeySpec(key, "AES"),
          new GCMParameterSpec(8 * TAG_SIZE, nonce));
      gcm.updateAAD(aad(context, sender, receiver));
      return concat(nonce, gcm.doFinal(plaintext));
    } catch (GeneralSecurityException err) {
      throw new IllegalStateException("AES/GCM/NoPadding failed", err);
    }
  }

  /**
   * Inverse of {@link #seal}.
   *
   * @throws ShareAuthenticationException if the ciphertext is truncated, tampered with, or was
   *     sealed for another key, round, sender or receiver
   */
  public static byte[] open(byte[] key, byte[] context, long sender, long receiver, byte[] sealed)
      throws ShareAuthenticationException {
    checkKey(key);
    if (sealed == null || sealed.length <= GCM_NONCE_SIZE + TAG_SIZE) {
      throw new ShareAuthenticationException("the share from client " + sender + " is truncated");
    }
    try {
      Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
      gcm.init(
          Cipher.DECRYPT_MODE,
          new SecretKeySpec(key, "AES"),
          new GCMParameterSpec(8 * TAG_SIZE, sealed, 0, GCM_NONCE_SIZE));
      gcm.updateAAD(aad(context, sender, receiver));
      return gcm.doFinal(sealed, GCM_NONCE_SIZE, sealed.length - GCM_NONCE_SIZE);
    } catch (AEADBadTagException err) {
      throw new ShareAuthenticationException(
          "the share from client " + sender + " to client " + receiver
              + " failed authentication");
    } catch (GeneralSecurityException err) {
      throw new IllegalStateException("AES/GCM/NoPadding failed", err);
    }
  }

  /** {@code SHA-256(context || index (4 bytes BE) || seed)}: binds a self-mask seed. */
  public static byte[] commitSeed(byte[] context, long index, byte[] seed) {
    ByteBuffer data = ByteBuffer.allocate(context.length + 4 + seed.length);
    data.put(context).putInt((int) index).put(seed);
    byte[] framed = data.array();
    try {
      return sha256(framed);
    } finally {
      Arrays.fill(framed, (byte) 0);
    }
  }

  private static byte[] aad(byte[] context, long sender, long receiver) {
    return ByteBuffer.allocate(context.length + 8)
        .put(context)
        .putInt((int) sender)
        .putInt((int) receiver)
        .array();
  }

  private static void checkKey(byte[] key) {
    if (key == null || key.length != KEY_SIZE) {
      throw new IllegalArgumentException("an AES-256 key must be " + KEY_SIZE + " bytes");
    }
  }

  private static KeyFactory keyFactory() {
    for (String name : X25519_NAMES) {
      try {
        return KeyFactory.getInstance(name);
      } catch (NoSuchAlgorithmException err) {
        // try the next name
      }
    }
    throw new IllegalStateException(UNAVAILABLE);
  }

  private static KeyAgreement keyAgreement() {
    for (String name : X25519_NAMES) {
      try {
        return KeyAgreement.getInstance(name);
      } catch (NoSuchAlgorithmException err) {
        // try the next name
      }
    }
    throw new IllegalStateException(UNAVAILABLE);
  }

  static byte[] sha256(byte[] data) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(data);
    } catch (NoSuchAlgorithmException err) {
      throw new IllegalStateException("SHA-256 is not available", err);
    }
  }

  static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static byte[] hex(String text) {
    byte[] out = new byte[text.length() / 2];
    for (int i = 0; i < out.length; i++) {
      out[i] = (byte) Integer.parseInt(text.substring(2 * i, 2 * i + 2), 16);
    }
    return out;
  }

  /**
   * One client's two X25519 key pairs for one round (cipher: share encryption; mask: pairwise
   * masks). Private keys are 32 random bytes, clamped as RFC 7748 (and OpenSSL) do. Never
   * printed; {@link #destroy()} wipes the private keys.
   */
  public static final class RoundKeys {
    private final byte[] cipherPrivate;
    private final byte[] maskPrivate;
    private final byte[] cipherPublic;
    private final byte[] maskPublic;

    private RoundKeys(byte[] cipherPrivate, byte[] maskPrivate) {
      this.cipherPrivate = cipherPrivate;
      this.maskPrivate = maskPrivate;
      this.cipherPublic = publicKeyOf(cipherPrivate);
      this.maskPublic = publicKeyOf(maskPrivate);
    }

    /** Two fresh key pairs (distinct public keys). */
    public static RoundKeys generate(SecureRandom random) {
      checkAvailable();
      while (true) {
        RoundKeys keys = new RoundKeys(clamped(random), clamped(random));
        if (!Arrays.equals(keys.cipherPublic, keys.maskPublic)) {
          return keys;
        }
        keys.destroy();
      }
    }

    /** Key pairs from raw private keys (tests). */
    static RoundKeys of(byte[] cipherPrivate, byte[] maskPrivate) {
      return new RoundKeys(cipherPrivate.clone(), maskPrivate.clone());
    }

    private static byte[] clamped(SecureRandom random) {
      byte[] key = new byte[KEY_SIZE];
      random.nextBytes(key);
      key[0] &= (byte) 248;
      key[31] &= 127;
      key[31] |= 64;
      return key;
    }

    public byte[] cipherPublic() {
      return cipherPublic.clone();
    }

    public byte[] maskPublic() {
      return maskPublic.clone();
    }

    /** The raw cipher private key (not a copy: callers must not keep or change it). */
    byte[] cipherPrivate() {
      return cipherPrivate;
    }

    /** The raw mask private key (not a copy): the secret Shamir-shared with the neighbours. */
    byte[] maskPrivate() {
      return maskPrivate;
    }

    /** Wipes both private keys. */
    public void destroy() {
      Arrays.fill(cipherPrivate, (byte) 0);
      Arrays.fill(maskPrivate, (byte) 0);
    }

    @Override
    public String toString() {
      return "RoundKeys(<hidden>)";
    }
  }
}
