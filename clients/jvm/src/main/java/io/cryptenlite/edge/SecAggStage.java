package io.cryptenlite.edge;

/**
 * The stages of one single-server secure-aggregation round ({@code
 * crypten_lite.edge.secagg_messages.SecAggStage}), in order: keys are advertised, Shamir shares
 * of the secrets are exchanged, masked inputs are uploaded, shares are revealed for unmasking;
 * then the round is DONE or FAILED.
 */
public enum SecAggStage {
  ADVERTISE("advertise", 0),
  SHARE_KEYS("share_keys", 1),
  MASKED_INPUT("masked_input", 2),
  UNMASK("unmask", 3),
  DONE("done", 4),
  FAILED("failed", 4);

  private final String wireName;
  private final int order;

  SecAggStage(String wireName, int order) {
    this.wireName = wireName;
    this.order = order;
  }

  /** The stage's name on the wire ({@code "share_keys"}, ...). */
  public String wireName() {
    return wireName;
  }

  /** Position in the round (DONE and FAILED are both last). */
  int order() {
    return order;
  }

  /** The stage before this one (null for ADVERTISE and FAILED): what a long poll "knows". */
  SecAggStage previous() {
    switch (this) {
      case SHARE_KEYS:
        return ADVERTISE;
      case MASKED_INPUT:
        return SHARE_KEYS;
      case UNMASK:
        return MASKED_INPUT;
      case DONE:
        return UNMASK;
      default:
        return null;
    }
  }

  /** The stage named {@code name} on the wire, or null. */
  public static SecAggStage fromWire(String name) {
    for (SecAggStage stage : values()) {
      if (stage.wireName.equals(name)) {
        return stage;
      }
    }
    return null;
  }
}
