package io.cryptenlite.edge;

import java.util.Arrays;

/**
 * One SecAgg round as this client saw it ({@code crypten_lite.client.secagg_client.SecAggReport}),
 * all public: the round, this client's index and the stage reached, how many neighbours it had,
 * the serialized request bytes it uploaded (all four stages) and of the masked input alone, the
 * serialized state-reply bytes it downloaded (no gRPC/TLS framing), the plaintext size {@code
 * num_elements * ring_bits / 8}, this thread's CPU time in the four stages without polling (0
 * where the platform has no per-thread CPU clock, e.g. Android), the neighbours whose relayed
 * share failed authentication, and how many state requests were made.
 */
public final class SecAggReport {
  private final long round;
  private final long index;
  private final SecAggStage stage;
  private final int neighbours;
  private final long uploadBytes;
  private final long maskedBytes;
  private final long downloadBytes;
  private final long plaintextBytes;
  private final double cpuSeconds;
  private final long[] complaints;
  private final int polls;

  SecAggReport(
      long round, long index, SecAggStage stage, int neighbours, long uploadBytes,
      long maskedBytes, long downloadBytes, long plaintextBytes, double cpuSeconds,
      long[] complaints, int polls) {
    this.round = round;
    this.index = index;
    this.stage = stage;
    this.neighbours = neighbours;
    this.uploadBytes = uploadBytes;
    this.maskedBytes = maskedBytes;
    this.downloadBytes = downloadBytes;
    this.plaintextBytes = plaintextBytes;
    this.cpuSeconds = cpuSeconds;
    this.complaints = complaints.clone();
    this.polls = polls;
  }

  public long round() {
    return round;
  }

  public long index() {
    return index;
  }

  public SecAggStage stage() {
    return stage;
  }

  public int neighbours() {
    return neighbours;
  }

  public long uploadBytes() {
    return uploadBytes;
  }

  public long maskedBytes() {
    return maskedBytes;
  }

  public long downloadBytes() {
    return downloadBytes;
  }

  public long plaintextBytes() {
    return plaintextBytes;
  }

  public double cpuSeconds() {
    return cpuSeconds;
  }

  public long[] complaints() {
    return complaints.clone();
  }

  public int polls() {
    return polls;
  }

  @Override
  public String toString() {
    return "SecAggReport(round=" + round + ", index=" + index + ", " + stage.wireName()
        + ", neighbours=" + neighbours + ", upload=" + uploadBytes + ", masked=" + maskedBytes
        + ", download=" + downloadBytes + ", plaintext=" + plaintextBytes + ", cpu="
        + Text.number(cpuSeconds) + "s, complaints=" + Arrays.toString(complaints) + ", polls="
        + polls + ")";
  }
}
