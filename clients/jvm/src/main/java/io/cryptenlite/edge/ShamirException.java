package io.cryptenlite.edge;

/**
 * Shares that cannot be combined or a secret that cannot be shared ({@code
 * crypten_lite.edge.shamir.ShamirError}): too few shares, duplicate or invalid x-coordinates, a
 * value outside the field, a result that is not a 32-byte secret. Never shows a share.
 */
public class ShamirException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  public ShamirException(String message) {
    super(message);
  }
}
