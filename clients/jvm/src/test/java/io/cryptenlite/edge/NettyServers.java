package io.cryptenlite.edge;

import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.netty.handler.ssl.SslContext;
import java.io.IOException;
import java.net.InetSocketAddress;

/** Real grpc-netty servers on 127.0.0.1 (ephemeral ports) for the CLI and TLS tests. */
final class NettyServers {
  private NettyServers() {}

  static Server start(FakeEdge fake, SslContext ssl, ServerInterceptor... interceptors)
      throws IOException {
    NettyServerBuilder builder =
        NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
            .addService(
                ServerInterceptors.intercept(
                    ServerInterceptors.intercept(fake, fake.headerRecorder()), interceptors));
    if (ssl != null) {
      builder.sslContext(ssl);
    }
    return builder.build().start();
  }

  static String address(Server server) {
    return "127.0.0.1:" + server.getPort();
  }

  /** Refuses calls without this client's token, with the Python gateway's message. */
  static ServerInterceptor requireToken(String clientId, String token) {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        if (!clientId.equals(headers.get(TokenCredentials.CLIENT_ID_KEY))
            || !token.equals(headers.get(TokenCredentials.TOKEN_KEY))) {
          call.close(
              Status.UNAUTHENTICATED.withDescription(
                  "invalid client token (wrong client or job, expired, or forged)"),
              new Metadata());
          return new ServerCall.Listener<Q>() {};
        }
        return next.startCall(call, headers);
      }
    };
  }
}
