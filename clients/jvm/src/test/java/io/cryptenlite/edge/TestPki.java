package io.cryptenlite.edge;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Throwaway EC P-256 certificates made with the JDK's keytool at test time (nothing is checked
 * in): a CA, leaf certificates signed by it with a DNS name and 127.0.0.1, and PEM files laid
 * out as {@code crypten-lite certs} writes them ({@code <name>.pem}, PKCS#8 {@code <name>.key}).
 */
final class TestPki {
  private static final String PASS = "test-only";
  private final Path dir;
  private final String ca;

  private TestPki(Path dir, String ca) {
    this.dir = dir;
    this.ca = ca;
  }

  static TestPki create(Path dir, String caName) throws IOException, InterruptedException {
    Files.createDirectories(dir);
    TestPki pki = new TestPki(dir, caName);
    pki.keytool("-genkeypair", "-keystore", pki.store(caName), "-alias", caName,
        "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=" + caName,
        "-ext", "bc:c", "-validity", "2");
    pki.keytool("-exportcert", "-keystore", pki.store(caName), "-alias", caName, "-rfc",
        "-file", pki.pem(caName).toString());
    return pki;
  }

  /** A leaf signed by the CA, naming {@code name} (DNS) and 127.0.0.1. */
  void issue(String name) throws IOException, InterruptedException, GeneralSecurityException {
    keytool("-genkeypair", "-keystore", store(name), "-alias", name, "-keyalg", "EC",
        "-groupname", "secp256r1", "-dname", "CN=" + name, "-validity", "2");
    Path csr = dir.resolve(name + ".csr");
    keytool("-certreq", "-keystore", store(name), "-alias", name, "-file", csr.toString());
    keytool("-gencert", "-keystore", store(ca), "-alias", ca, "-infile", csr.toString(),
        "-outfile", pem(name).toString(), "-rfc", "-validity", "2",
        "-ext", "san=dns:" + name + ",ip:127.0.0.1", "-ext", "eku=serverAuth,clientAuth");
    KeyStore keys = KeyStore.getInstance("PKCS12");
    try (InputStream in = new FileInputStream(store(name))) {
      keys.load(in, PASS.toCharArray());
    }
    PrivateKey key = (PrivateKey) keys.getKey(name, PASS.toCharArray());
    String body = Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(key.getEncoded());
    Files.write(
        key(name),
        ("-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n")
            .getBytes(StandardCharsets.US_ASCII));
  }

  Path pem(String name) {
    return dir.resolve(name + ".pem");
  }

  Path key(String name) {
    return dir.resolve(name + ".key");
  }

  Path caPem() {
    return pem(ca);
  }

  /** The key and chain of {@code name} as a KeyStore (for a test server). */
  KeyStore keyStore(String name) throws IOException, GeneralSecurityException {
    ClientTlsIdentity id = identity(name);
    KeyStore store = KeyStore.getInstance("PKCS12");
    store.load(null, null);
    List<X509Certificate> chain = new ArrayList<>(Arrays.asList(id.certificateChain()));
    chain.addAll(Arrays.asList(id.trustedCertificates()));
    store.setKeyEntry(name, id.privateKey(), PASS.toCharArray(), chain.toArray(new X509Certificate[0]));
    return store;
  }

  ClientTlsIdentity identity(String name) throws IOException, GeneralSecurityException {
    return ClientTlsIdentity.fromFiles(caPem().toFile(), pem(name).toFile(), key(name).toFile());
  }

  X509Certificate caCertificate() throws IOException, GeneralSecurityException {
    try (InputStream in = Files.newInputStream(caPem())) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
  }

  static char[] password() {
    return PASS.toCharArray();
  }

  private String store(String name) {
    return dir.resolve(name + ".p12").toString();
  }

  private void keytool(String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(System.getProperty("java.home") + File.separator + "bin" + File.separator + "keytool");
    command.addAll(Arrays.asList(args));
    command.addAll(Arrays.asList("-storetype", "PKCS12", "-storepass", PASS, "-noprompt"));
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    byte[] output = process.getInputStream().readAllBytes();
    if (!process.waitFor(60, TimeUnit.SECONDS) || process.exitValue() != 0) {
      throw new IOException("keytool " + args[0] + " failed: " + new String(output, StandardCharsets.UTF_8));
    }
  }
}
