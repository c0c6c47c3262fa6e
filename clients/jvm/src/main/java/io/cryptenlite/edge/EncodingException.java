package io.cryptenlite.edge;

/**
 * A local input the client refuses to encode: NaN or infinity in an update, a value beyond the
 * fixed-point range, a quantization spec or ring that cannot hold one client's update. Raised
 * before anything is sent; the message names the problem, never the values.
 */
public class EncodingException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  public EncodingException(String message) {
    super(message);
  }
}
