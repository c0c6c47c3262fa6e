package io.cryptenlite.edge;

import io.grpc.Status;

/**
 * Why a server refused a request ({@code crypten_lite.edge.messages.EdgeRefusal}), carried as a
 * gRPC status code: INVALID_ARGUMENT (and RESOURCE_EXHAUSTED) is {@link #INVALID},
 * ALREADY_EXISTS {@link #DUPLICATE}, FAILED_PRECONDITION {@link #STALE}, UNAUTHENTICATED and
 * PERMISSION_DENIED {@link #UNAUTHENTICATED}, UNAVAILABLE {@link #UNAVAILABLE}.
 */
public enum Refusal {
  /** Malformed or wrong-length request: fix the request, do not retry it as is. */
  INVALID("invalid"),
  /** Already delivered this round, or the nonce was used: nothing to do. */
  DUPLICATE("duplicate"),
  /** Wrong round, or the round is not open: fetch the round again and wait for the next. */
  STALE("stale"),
  /** No or unknown client identity (certificate or token): get valid credentials. */
  UNAUTHENTICATED("unauthenticated"),
  /** Not reachable or not ready: retried with backoff by {@link ServerLink}, then raised. */
  UNAVAILABLE("unavailable");

  private final String wireName;

  Refusal(String wireName) {
    this.wireName = wireName;
  }

  /** The refusal's name as the Python side spells it ({@code "invalid"}, ...). */
  public String wireName() {
    return wireName;
  }

  /** The refusal a status code stands for, or null for any other code. */
  public static Refusal fromStatus(Status.Code code) {
    switch (code) {
      case INVALID_ARGUMENT:
      case RESOURCE_EXHAUSTED:
        return INVALID;
      case ALREADY_EXISTS:
        return DUPLICATE;
      case FAILED_PRECONDITION:
        return STALE;
      case UNAUTHENTICATED:
      case PERMISSION_DENIED:
        return UNAUTHENTICATED;
      case UNAVAILABLE:
        return UNAVAILABLE;
      default:
        return null;
    }
  }

  /** The status code a server sends for this refusal. */
  public Status.Code statusCode() {
    switch (this) {
      case INVALID:
        return Status.Code.INVALID_ARGUMENT;
      case DUPLICATE:
        return Status.Code.ALREADY_EXISTS;
      case STALE:
        return Status.Code.FAILED_PRECONDITION;
      case UNAUTHENTICATED:
        return Status.Code.UNAUTHENTICATED;
      default:
        return Status.Code.UNAVAILABLE;
    }
  }
}
