package io.cryptenlite.edge;

/** A job's round as a server reports it. */
public enum RoundState {
  /** Accepting updates for the round. */
  OPEN("open"),
  /** Aggregating; the next round opens soon. */
  CLOSED("closed"),
  /** The job is over; clients should stop. */
  FINISHED("finished");

  private final String wireName;

  RoundState(String wireName) {
    this.wireName = wireName;
  }

  public String wireName() {
    return wireName;
  }

  /** The state named {@code name} on the wire, or null. */
  public static RoundState fromWire(String name) {
    for (RoundState state : values()) {
      if (state.wireName.equals(name)) {
        return state;
      }
    }
    return null;
  }
}
