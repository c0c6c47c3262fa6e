package io.cryptenlite.edge;

import io.grpc.Status;

/**
 * A failed call's gRPC status as an {@link EdgeException}, as the Python stub maps it: a
 * refusal code becomes {@link EdgeRefusalException} with the server's message;
 * DEADLINE_EXCEEDED an {@link EdgeTimeoutException}; anything else an {@link
 * EdgeCommunicationException} naming the server and the code.
 */
final class StatusErrors {
  static final int MESSAGE_LIMIT = 400;

  private StatusErrors() {}

  static EdgeException fromStatus(Status status, String address, long timeoutMillis) {
    String details = describe(status);
    Refusal refusal = Refusal.fromStatus(status.getCode());
    if (refusal != null) {
      return new EdgeRefusalException(refusal, details);
    }
    if (status.getCode() == Status.Code.DEADLINE_EXCEEDED) {
      return new EdgeTimeoutException(
          "server " + address + " did not answer within " + seconds(timeoutMillis) + "s");
    }
    return new EdgeCommunicationException(
        "server " + address + ": " + status.getCode().name() + ": " + details);
  }

  /**
   * The server's description; for a failure on this side (connection refused, TLS handshake)
   * grpc-java's description is terse, so the local cause's class and message follow it.
   */
  static String describe(Status status) {
    String text = status.getDescription() == null ? "" : status.getDescription();
    int pipeline = text.indexOf("\nChannel Pipeline:"); // grpc-netty's debugging suffix
    if (pipeline >= 0) {
      text = text.substring(0, pipeline);
    }
    Throwable cause = status.getCause();
    if (cause != null) {
      Throwable root = cause;
      while (root.getCause() != null && root.getCause() != root) {
        root = root.getCause();
      }
      String why = root.getClass().getSimpleName() + ": " + root.getMessage();
      text = text.isEmpty() ? why : text + " (" + why + ")";
    }
    return Text.clean(text, MESSAGE_LIMIT);
  }

  static String seconds(long millis) {
    return Text.number(millis / 1000.0);
  }
}
