package io.cryptenlite.edge;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import java.util.concurrent.Executor;

/**
 * Operator-token authentication: every call carries the metadata {@code crypten-lite-client:
 * <client id>} and {@code crypten-lite-token: <token>} (as the Python stub sends them). Use it
 * with a plaintext channel only behind a TLS-terminating proxy the operator runs; with mutual
 * TLS the certificate already names the client.
 *
 * <p>Secret: the token (it authenticates this client for one job until it expires).
 * {@link #toString()} never shows it.
 */
public final class TokenCredentials extends CallCredentials {
  /** Metadata key of the client id. */
  public static final Metadata.Key<String> CLIENT_ID_KEY =
      Metadata.Key.of("crypten-lite-client", Metadata.ASCII_STRING_MARSHALLER);

  /** Metadata key of the token. */
  public static final Metadata.Key<String> TOKEN_KEY =
      Metadata.Key.of("crypten-lite-token", Metadata.ASCII_STRING_MARSHALLER);

  private final String clientId;
  private final String token;

  /**
   * @param clientId the id the token was issued to ({@code client-<id>})
   * @param token the operator-issued token ({@code v2.<expiry>.<hex>})
   */
  public TokenCredentials(String clientId, String token) {
    this.clientId = checkAscii(clientId, "client id");
    this.token = checkAscii(token, "token");
  }

  public String clientId() {
    return clientId;
  }

  @Override
  public void applyRequestMetadata(
      RequestInfo requestInfo, Executor appExecutor, MetadataApplier applier) {
    Metadata headers = new Metadata();
    headers.put(CLIENT_ID_KEY, clientId);
    headers.put(TOKEN_KEY, token);
    applier.apply(headers);
  }

  @Override
  public void thisUsesUnstableApi() {}

  @Override
  public String toString() {
    return "TokenCredentials(" + Text.clean(clientId, 80) + ", <token hidden>)";
  }

  private static String checkAscii(String value, String what) {
    if (value == null || value.isEmpty() || value.length() > 256) {
      throw new IllegalArgumentException("the " + what + " must be 1-256 characters");
    }
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c <= 0x20 || c >= 0x7F) {
        throw new IllegalArgumentException("the " + what + " must be printable ASCII");
      }
    }
    return value;
  }
}
