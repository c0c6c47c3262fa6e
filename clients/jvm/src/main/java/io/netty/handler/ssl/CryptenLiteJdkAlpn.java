package io.netty.handler.ssl;

import io.netty.handler.codec.http2.Http2SecurityUtil;
import java.util.Collections;
import javax.net.ssl.SSLContext;

/**
 * JDK (Java 9+) ALPN for netty builds that lack netty's own JDK ALPN negotiator.
 *
 * <p>Debian's libnetty-java 4.1.48 ships without {@code JdkAlpnApplicationProtocolNegotiator}
 * (its Jetty-ALPN and Conscrypt back ends are not packaged), so {@code
 * GrpcSslContexts.forClient().build()} fails there with "JDK provider does not support ALPN
 * protocol" and grpc-netty cannot speak TLS at all. This class restores the Java 9+ path of that
 * negotiator and nothing else: it wraps each {@code SSLEngine} in netty's own {@code
 * Java9SslEngine}, which offers the protocols with {@code SSLParameters.setApplicationProtocols}
 * and reports the selected one to {@code SslHandler}. It lives in netty's package because those
 * classes are package-private. It is used only when netty's regular path fails (see {@code
 * io.cryptenlite.edge.NettyChannelFactory}); with an upstream netty it is not needed, and it is
 * never used on Android (OkHttp transport).
 */
@SuppressWarnings("deprecation") // JdkApplicationProtocolNegotiator: what JdkSslContext takes
public final class CryptenLiteJdkAlpn {
  /** The protocol gRPC negotiates. */
  static final String HTTP2 = "h2";

  private static final JdkApplicationProtocolNegotiator.SslEngineWrapperFactory JAVA9_WRAPPER =
      new JdkApplicationProtocolNegotiator.SslEngineWrapperFactory() {
        @Override
        public javax.net.ssl.SSLEngine wrapSslEngine(
            javax.net.ssl.SSLEngine engine,
            JdkApplicationProtocolNegotiator negotiator,
            boolean isServer) {
          return new Java9SslEngine(engine, negotiator, isServer);
        }
      };

  private CryptenLiteJdkAlpn() {}

  /** Whether the running JDK can negotiate ALPN (Java 9+ {@code SSLEngine} API). */
  public static boolean available() {
    return Java9SslUtils.supportsAlpn();
  }

  /**
   * A client {@link SslContext} over {@code jdkContext} (its key and trust managers decide the
   * client certificate and the trusted CAs) that offers ALPN {@code h2} with gRPC's HTTP/2
   * cipher suites. As grpc-netty configures it, the client accepts the handshake whatever the
   * server selects and grpc-netty then refuses anything but {@code h2}.
   *
   * @param server whether the context is for a server (tests only)
   */
  public static SslContext context(SSLContext jdkContext, boolean server, ClientAuth clientAuth) {
    if (!available()) {
      throw new UnsupportedOperationException("this JDK cannot negotiate ALPN (Java 9+ needed)");
    }
    JdkApplicationProtocolNegotiator negotiator =
        new JdkBaseApplicationProtocolNegotiator(
            JAVA9_WRAPPER,
            JdkBaseApplicationProtocolNegotiator.NO_FAIL_SELECTOR_FACTORY,
            JdkBaseApplicationProtocolNegotiator.NO_FAIL_SELECTION_LISTENER_FACTORY,
            Collections.singletonList(HTTP2));
    return new JdkSslContext(
        jdkContext,
        !server,
        Http2SecurityUtil.CIPHERS,
        SupportedCipherSuiteFilter.INSTANCE,
        negotiator,
        clientAuth,
        null,
        false);
  }
}
