package io.cryptenlite.edge;

import io.grpc.ManagedChannel;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.CryptenLiteJdkAlpn;
import io.netty.handler.ssl.SslContext;
import java.io.File;
import java.io.IOException;
import java.security.GeneralSecurityException;

/**
 * Channels over grpc-netty (JVM): mutual TLS with the client's certificate, trusting only the
 * job CA and checking the server's certificate names its identity ({@code party-<i>}, via
 * {@code overrideAuthority}, as the Python client's TLS target-name override); or plaintext,
 * for an operator token behind a TLS-terminating proxy ({@link TokenCredentials}).
 *
 * <p>What travels: TLS-protected HTTP/2; the client's private key never leaves the process.
 */
public final class NettyChannelFactory implements ChannelFactory {
  private final SslContext ssl;

  private NettyChannelFactory(SslContext ssl) {
    this.ssl = ssl;
  }

  /**
   * Mutual TLS with {@code identity} (one TLS context shared by every server's channel). Uses
   * grpc-netty's {@code GrpcSslContexts}; where the installed netty lacks its JDK ALPN
   * negotiator (Debian's libnetty-java 4.1.48), the same configuration is built through {@link
   * io.netty.handler.ssl.CryptenLiteJdkAlpn} instead.
   */
  public static NettyChannelFactory mutualTls(ClientTlsIdentity identity)
      throws IOException, GeneralSecurityException {
    SslContext context;
    try {
      context =
          GrpcSslContexts.forClient()
              .trustManager(identity.trustedCertificates())
              .keyManager(identity.privateKey(), identity.certificateChain())
              .build();
    } catch (UnsupportedOperationException noJdkAlpnInNetty) {
      context = CryptenLiteJdkAlpn.context(identity.sslContext(), false, ClientAuth.NONE);
    }
    return new NettyChannelFactory(context);
  }

  /** Mutual TLS from the PEM files ({@code ca.pem}, {@code client-<id>.pem}, {@code .key}). */
  public static NettyChannelFactory mutualTls(File ca, File cert, File key)
      throws IOException, GeneralSecurityException {
    return mutualTls(ClientTlsIdentity.fromFiles(ca, cert, key));
  }

  /** Plaintext HTTP/2 (authenticate with {@link TokenCredentials}; only behind a TLS proxy). */
  public static NettyChannelFactory plaintext() {
    return new NettyChannelFactory(null);
  }

  public boolean usesTls() {
    return ssl != null;
  }

  @Override
  public ManagedChannel open(String address, String serverIdentity, LinkOptions options) {
    NettyChannelBuilder builder =
        NettyChannelBuilder.forTarget(address).maxInboundMessageSize(options.maxInboundBytes());
    if (ssl == null) {
      builder.usePlaintext();
    } else {
      builder.sslContext(ssl);
      if (serverIdentity != null) {
        builder.overrideAuthority(serverIdentity);
      }
    }
    return builder.build();
  }
}
