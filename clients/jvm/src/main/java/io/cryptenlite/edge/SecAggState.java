package io.cryptenlite.edge;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * What the server tells one client about a SecAgg round ({@code
 * crypten_lite.edge.secagg_messages.SecAggState}), all public: the stage, the client's round
 * index (0 while it has none), the threshold {@code t}, its neighbours with their public keys,
 * the neighbours that shared keys (the client masks with exactly these), the sealed shares
 * relayed to it, and at the unmasking the survivors (masked input received) and the dropped;
 * {@code failure} says why a round FAILED (or why this client is out of it).
 */
public final class SecAggState {
  private final long round;
  private final SecAggStage stage;
  private final long index;
  private final long threshold;
  private final List<NeighbourKey> neighbours;
  private final long[] shared;
  private final List<EncryptedShare> inbox;
  private final long[] survivors;
  private final long[] dropped;
  private final String failure;

  private SecAggState(Builder b) {
    this.round = b.round;
    this.stage = b.stage;
    this.index = b.index;
    this.threshold = b.threshold;
    this.neighbours = Collections.unmodifiableList(new ArrayList<>(b.neighbours));
    this.shared = b.shared.clone();
    this.inbox = Collections.unmodifiableList(new ArrayList<>(b.inbox));
    this.survivors = b.survivors.clone();
    this.dropped = b.dropped.clone();
    this.failure = b.failure == null ? "" : b.failure;
  }

  /** A builder for round {@code round} at {@code stage} (everything else empty). */
  public static Builder builder(long round, SecAggStage stage) {
    return new Builder(round, stage);
  }

  public long round() {
    return round;
  }

  public SecAggStage stage() {
    return stage;
  }

  /** This client's round index (1..n); 0 while it has none. */
  public long index() {
    return index;
  }

  public long threshold() {
    return threshold;
  }

  public List<NeighbourKey> neighbours() {
    return neighbours;
  }

  public long[] shared() {
    return shared.clone();
  }

  public List<EncryptedShare> inbox() {
    return inbox;
  }

  public long[] survivors() {
    return survivors.clone();
  }

  public long[] dropped() {
    return dropped.clone();
  }

  /** Why the round failed or this client is out of it ("" otherwise). */
  public String failure() {
    return failure;
  }

  @Override
  public String toString() {
    return "SecAggState(round=" + round + ", " + stage.wireName() + ", index=" + index
        + ", t=" + threshold + ", neighbours=" + neighbours.size() + ", shared="
        + shared.length + ", inbox=" + inbox.size() + ", survivors=" + survivors.length
        + ", dropped=" + dropped.length + (failure.isEmpty() ? "" : ", failed") + ")";
  }

  /** Builds a {@link SecAggState} (for wire decoding, fake servers and tests). */
  public static final class Builder {
    private final long round;
    private final SecAggStage stage;
    private long index;
    private long threshold;
    private List<NeighbourKey> neighbours = new ArrayList<>();
    private long[] shared = new long[0];
    private List<EncryptedShare> inbox = new ArrayList<>();
    private long[] survivors = new long[0];
    private long[] dropped = new long[0];
    private String failure = "";

    private Builder(long round, SecAggStage stage) {
      if (stage == null) {
        throw new IllegalArgumentException("stage must be set");
      }
      this.round = round;
      this.stage = stage;
    }

    public Builder index(long value) {
      index = value;
      return this;
    }

    public Builder threshold(long value) {
      threshold = value;
      return this;
    }

    public Builder neighbours(List<NeighbourKey> value) {
      neighbours = new ArrayList<>(value);
      return this;
    }

    public Builder shared(long... value) {
      shared = value.clone();
      return this;
    }

    public Builder inbox(List<EncryptedShare> value) {
      inbox = new ArrayList<>(value);
      return this;
    }

    public Builder survivors(long... value) {
      survivors = value.clone();
      return this;
    }

    public Builder dropped(long... value) {
      dropped = value.clone();
      return this;
    }

    public Builder failure(String value) {
      failure = value;
      return this;
    }

    public SecAggState build() {
      return new SecAggState(this);
    }
  }
}
