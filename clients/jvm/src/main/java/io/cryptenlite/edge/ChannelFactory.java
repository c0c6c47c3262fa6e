package io.cryptenlite.edge;

import io.grpc.ManagedChannel;

/**
 * Opens the gRPC channel to one server; the transport is the caller's choice. On a JVM use
 * {@link NettyChannelFactory} (mutual TLS or plaintext); on Android pass a factory built on
 * {@code io.grpc.okhttp.OkHttpChannelBuilder} (see README.md: {@code
 * OkHttpChannelBuilder.forTarget(address).sslSocketFactory(identity.sslContext()
 * .getSocketFactory()).overrideAuthority(serverIdentity)}), which is not compiled here.
 *
 * <p>With TLS the channel must verify that the server's certificate names {@code
 * serverIdentity} (the job's {@code party-<i>}): that pins which server holds which share.
 */
public interface ChannelFactory {
  /**
   * A channel to {@code address} ({@code host:port}) whose server must present {@code
   * serverIdentity}; it should accept replies of {@link LinkOptions#maxInboundBytes()}.
   */
  ManagedChannel open(String address, String serverIdentity, LinkOptions options);
}
