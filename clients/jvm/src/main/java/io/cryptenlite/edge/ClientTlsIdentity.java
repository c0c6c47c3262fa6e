package io.cryptenlite.edge;

import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * A client's mutual-TLS identity from the PEM files {@code crypten-lite certs} writes: the job
 * CA ({@code ca.pem}, the only issuer trusted for servers), the client's certificate ({@code
 * client-<id>.pem}, naming the client) and its PKCS#8 EC private key ({@code client-<id>.key}).
 * Parsed with the platform's {@code CertificateFactory}/{@code KeyFactory}, so it works on a JVM
 * and on Android alike: {@link NettyChannelFactory} uses it directly, an Android app passes
 * {@link #sslContext()}{@code .getSocketFactory()} to {@code OkHttpChannelBuilder}.
 *
 * <p>Secret: the private key. The certificates are public. {@link #toString()} names the
 * certificate's subject only.
 */
public final class ClientTlsIdentity {
  private final X509Certificate[] trusted;
  private final X509Certificate[] chain;
  private final PrivateKey key;

  private ClientTlsIdentity(X509Certificate[] trusted, X509Certificate[] chain, PrivateKey key) {
    this.trusted = trusted;
    this.chain = chain;
    this.key = key;
  }

  /** From the three PEM texts. */
  public static ClientTlsIdentity fromPem(String caPem, String certPem, String keyPem)
      throws GeneralSecurityException {
    X509Certificate[] trusted = certificates(caPem, "the CA file");
    X509Certificate[] chain = certificates(certPem, "the client certificate file");
    return new ClientTlsIdentity(trusted, chain, Pem.privateKey(keyPem));
  }

  /** From the three PEM files. */
  public static ClientTlsIdentity fromFiles(File ca, File cert, File key)
      throws IOException, GeneralSecurityException {
    byte[] keyBytes = readAll(key);
    try {
      return fromPem(
          new String(readAll(ca), StandardCharsets.US_ASCII),
          new String(readAll(cert), StandardCharsets.US_ASCII),
          new String(keyBytes, StandardCharsets.US_ASCII));
    } finally {
      Arrays.fill(keyBytes, (byte) 0);
    }
  }

  /** The CA certificates servers must chain to. */
  public X509Certificate[] trustedCertificates() {
    return trusted.clone();
  }

  /** The client's certificate (and any intermediates). */
  public X509Certificate[] certificateChain() {
    return chain.clone();
  }

  /** The client's private key (secret: hand it to the TLS stack only). */
  public PrivateKey privateKey() {
    return key;
  }

  /**
   * A TLS context that presents this client's certificate and trusts only the job CA (an
   * in-memory KeyStore of the platform's default type; nothing is written to disk).
   */
  public SSLContext sslContext() throws GeneralSecurityException {
    try {
      char[] password = new char[16];
      SecureRandom random = new SecureRandom();
      for (int i = 0; i < password.length; i++) {
        password[i] = (char) ('a' + random.nextInt(26));
      }
      KeyStore keys = KeyStore.getInstance(KeyStore.getDefaultType());
      keys.load(null, null);
      keys.setKeyEntry("client", key, password, chain);
      KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(keys, password);
      Arrays.fill(password, '\0');
      KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
      trust.load(null, null);
      for (int i = 0; i < trusted.length; i++) {
        trust.setCertificateEntry("ca-" + i, trusted[i]);
      }
      TrustManagerFactory tmf =
          TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(trust);
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
      return context;
    } catch (IOException err) {
      throw new GeneralSecurityException("cannot build the in-memory key store", err);
    }
  }

  @Override
  public String toString() {
    return "ClientTlsIdentity(" + chain[0].getSubjectX500Principal().getName() + ", <key hidden>)";
  }

  private static X509Certificate[] certificates(String pem, String what)
      throws GeneralSecurityException {
    CertificateFactory factory = CertificateFactory.getInstance("X.509");
    List<X509Certificate> out = new ArrayList<>();
    for (Certificate cert :
        factory.generateCertificates(
            new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)))) {
      out.add((X509Certificate) cert);
    }
    if (out.isEmpty()) {
      throw new GeneralSecurityException(what + " holds no certificate");
    }
    return out.toArray(new X509Certificate[0]);
  }

  private static byte[] readAll(File file) throws IOException {
    try (InputStream in = new FileInputStream(file)) {
      byte[] buffer = new byte[8192];
      java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
      int read;
      while ((read = in.read(buffer)) > 0) {
        out.write(buffer, 0, read);
      }
      return out.toByteArray();
    }
  }
}
