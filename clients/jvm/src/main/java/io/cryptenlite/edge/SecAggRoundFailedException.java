package io.cryptenlite.edge;

/**
 * The SecAgg round failed, or this client is out of it ({@code
 * crypten_lite.client.secagg_client.SecAggRoundFailed}): the server's state said FAILED (every
 * client sees the same reason), a stage moved on without this client, an upload was refused as
 * STALE, or too few neighbours shared keys. {@link #reason()} is the server's (cleaned) words.
 */
public class SecAggRoundFailedException extends EdgeException {
  private static final long serialVersionUID = 1L;

  private final String reason;

  public SecAggRoundFailedException(String reason) {
    super(reason);
    this.reason = reason;
  }

  /** Why the round failed. */
  public String reason() {
    return reason;
  }
}
