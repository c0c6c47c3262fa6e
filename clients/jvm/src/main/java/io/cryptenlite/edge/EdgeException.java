package io.cryptenlite.edge;

/**
 * A call to a server did not succeed: a refusal ({@link EdgeRefusalException}), no answer in
 * time ({@link EdgeTimeoutException}) or a broken or malformed exchange ({@link
 * EdgeCommunicationException}). Messages carry the server's address and its (cleaned) words,
 * never share material.
 */
public class EdgeException extends Exception {
  private static final long serialVersionUID = 1L;

  public EdgeException(String message) {
    super(message);
  }

  public EdgeException(String message, Throwable cause) {
    super(message, cause);
  }
}
