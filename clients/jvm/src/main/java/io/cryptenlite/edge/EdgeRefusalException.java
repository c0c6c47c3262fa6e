package io.cryptenlite.edge;

/**
 * A server refused a request: the {@link Refusal} kind and the server's own message (cleaned
 * to printable ASCII, at most 400 characters), passed through verbatim otherwise. Never carries
 * share material, seeds or tokens.
 */
public class EdgeRefusalException extends EdgeException {
  private static final long serialVersionUID = 1L;

  /** How a DUPLICATE refusal starts when the server already holds this very upload. */
  public static final String DUPLICATE_SAME_UPLOAD = "same upload already stored";

  private final Refusal refusal;
  private final String detail;

  public EdgeRefusalException(Refusal refusal, String detail) {
    super(refusal.wireName() + ": " + detail);
    this.refusal = refusal;
    this.detail = detail;
  }

  public Refusal refusal() {
    return refusal;
  }

  /** The server's message. */
  public String detail() {
    return detail;
  }

  /**
   * Whether this DUPLICATE says the server already stored this very upload (same client,
   * round and nonce): an earlier attempt of the same submit landed.
   */
  public boolean isOwnDuplicate() {
    return refusal == Refusal.DUPLICATE && detail.startsWith(DUPLICATE_SAME_UPLOAD);
  }
}
