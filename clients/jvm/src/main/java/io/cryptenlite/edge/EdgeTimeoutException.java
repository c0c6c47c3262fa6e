package io.cryptenlite.edge;

/** A server did not answer within the call's deadline, or no round opened in time. */
public class EdgeTimeoutException extends EdgeException {
  private static final long serialVersionUID = 1L;

  public EdgeTimeoutException(String message) {
    super(message);
  }
}
