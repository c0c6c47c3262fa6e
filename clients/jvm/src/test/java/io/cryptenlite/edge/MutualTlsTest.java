package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.CryptenLiteJdkAlpn;
import io.netty.handler.ssl.SslContext;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSession;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mutual TLS over grpc-netty with PEM files laid out as crypten-lite writes them: the server's
 * identity is pinned (party-i), only the job CA is trusted, the client presents its
 * certificate, and a PKCS#8 EC key is read with the platform KeyFactory.
 */
class MutualTlsTest {
  @TempDir static Path dir;
  private static TestPki pki;
  private static TestPki otherPki;
  private static final List<Server> servers = new ArrayList<>();
  private static final List<String> peers = Collections.synchronizedList(new ArrayList<>());

  @BeforeAll
  static void start() throws Exception {
    pki = TestPki.create(dir.resolve("job"), "job-ca");
    for (String name : new String[] {"party-0", "party-1", "client-0"}) {
      pki.issue(name);
    }
    otherPki = TestPki.create(dir.resolve("other"), "other-ca");
    otherPki.issue("client-0");
    for (int i = 0; i < 2; i++) {
      FakeEdge fake = new FakeEdge();
      int index = i;
      fake.roundInfo = (request, call) -> FakeEdge.round(1, "open", index, 2).build();
      servers.add(NettyServers.start(fake, serverContext("party-" + i), recordPeer()));
    }
  }

  @AfterAll
  static void stop() {
    servers.forEach(Server::shutdownNow);
  }



  private static SslContext serverContext(String name) throws Exception {
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(pki.keyStore(name), TestPki.password());
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    trust.setCertificateEntry("ca", pki.caCertificate());
    TrustManagerFactory tmf =
        TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(trust);
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
    return CryptenLiteJdkAlpn.context(context, true, ClientAuth.REQUIRE);
  }

  private static ServerInterceptor recordPeer() {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        SSLSession session = call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION);
        try {
          peers.add(session.getPeerPrincipal().getName());
        } catch (javax.net.ssl.SSLPeerUnverifiedException err) {
          peers.add("unverified");
        }
        return next.startCall(call, headers);
      }
    };
  }

  private static List<String> addresses() {
    return Arrays.asList(NettyServers.address(servers.get(0)), NettyServers.address(servers.get(1)));
  }

  private static LinkOptions quick() {
    return LinkOptions.defaults().withCallTimeoutMillis(5_000).withConnectTimeoutMillis(300);
  }

  @Test
  void theClientReachesPinnedServersWithItsCertificate() throws Exception {
    NettyChannelFactory factory =
        NettyChannelFactory.mutualTls(
            pki.caPem().toFile(), pki.pem("client-0").toFile(), pki.key("client-0").toFile());
    assertTrue(factory.usesTls());
    try (EdgeClient client = EdgeClient.connect(addresses(), null, factory, null, quick())) {
      RoundInfo info = client.roundInfo();
      assertEquals(1, info.round());
      assertEquals(RoundState.OPEN, info.state());
    }
    assertTrue(peers.contains("CN=client-0"), peers.toString());
  }

  @Test
  void aServerWithAnotherIdentityIsRefused() throws Exception {
    NettyChannelFactory factory = NettyChannelFactory.mutualTls(pki.identity("client-0"));
    try (EdgeClient client =
        EdgeClient.connect(
            addresses(), Arrays.asList("party-1", "party-0"), factory, null, quick())) {
      EdgeRefusalException err = assertThrows(EdgeRefusalException.class, client::roundInfo);
      assertEquals(Refusal.UNAVAILABLE, err.refusal());
      assertTrue(err.detail().contains("No subject alternative DNS name matching party-1"), err.detail());
    }
  }

  @Test
  void aClientThatTrustsAnotherCaCannotConnect() throws Exception {
    NettyChannelFactory factory =
        NettyChannelFactory.mutualTls(
            otherPki.caPem().toFile(),
            otherPki.pem("client-0").toFile(),
            otherPki.key("client-0").toFile());
    try (EdgeClient client = EdgeClient.connect(addresses(), null, factory, null, quick())) {
      EdgeRefusalException err = assertThrows(EdgeRefusalException.class, client::roundInfo);
      assertEquals(Refusal.UNAVAILABLE, err.refusal());
      assertTrue(err.detail().contains("still unavailable after 0.3s"), err.detail());
    }
  }

  @Test
  void theIdentityReadsPemAndHidesTheKey() throws Exception {
    ClientTlsIdentity id = pki.identity("client-0");
    assertEquals("EC", id.privateKey().getAlgorithm());
    assertEquals("CN=client-0", id.certificateChain()[0].getSubjectX500Principal().getName());
    assertEquals("ClientTlsIdentity(CN=client-0, <key hidden>)", id.toString());
    id.sslContext(); // the Android path (OkHttp's sslSocketFactory) builds too
    String pem = new String(java.nio.file.Files.readAllBytes(pki.key("client-0")), "US-ASCII");
    assertThrows(
        java.security.GeneralSecurityException.class,
        () -> Pem.privateKey(pem.replace("PRIVATE KEY", "EC PRIVATE KEY")));
    assertThrows(
        java.security.GeneralSecurityException.class,
        () -> Pem.privateKey(pem.replace("M", "*")));
  }
}
