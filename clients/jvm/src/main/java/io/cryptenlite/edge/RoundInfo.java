package io.cryptenlite.edge;

/**
 * What a server says about the job's current round (all public): job id, round number and
 * state, the update length and ring, the quantization, how many servers share the update and
 * which one this is, the minimum number of clients, and the public global model (float32).
 */
public final class RoundInfo {
  private final String jobId;
  private final long round;
  private final RoundState state;
  private final long numElements;
  private final int ringBits;
  private final QuantSpec quant;
  private final int numServers;
  private final int serverIndex;
  private final int minClients;
  private final float[] model;

  public RoundInfo(
      String jobId,
      long round,
      RoundState state,
      long numElements,
      int ringBits,
      QuantSpec quant,
      int numServers,
      int serverIndex,
      int minClients,
      float[] model) {
    this.jobId = jobId;
    this.round = round;
    this.state = state;
    this.numElements = numElements;
    this.ringBits = RingWords.checkBits(ringBits);
    this.quant = quant;
    this.numServers = numServers;
    this.serverIndex = serverIndex;
    this.minClients = minClients;
    this.model = model == null ? new float[0] : model.clone();
  }

  /** A server's {@code RoundInfoReply}, checked (see {@link EdgeWire#roundInfo}). */
  public static RoundInfo fromReply(crypten_lite.v1.EdgeOuterClass.RoundInfoReply reply)
      throws EdgeCommunicationException {
    return EdgeWire.roundInfo(reply);
  }

  public String jobId() {
    return jobId;
  }

  public long round() {
    return round;
  }

  public RoundState state() {
    return state;
  }

  public long numElements() {
    return numElements;
  }

  public int ringBits() {
    return ringBits;
  }

  public QuantSpec quant() {
    return quant;
  }

  public int numServers() {
    return numServers;
  }

  public int serverIndex() {
    return serverIndex;
  }

  public int minClients() {
    return minClients;
  }

  /** A copy of the public model the round starts from (may be empty). */
  public float[] model() {
    return model.clone();
  }

  /** This info with another state. */
  public RoundInfo withState(RoundState newState) {
    return new RoundInfo(
        jobId, round, newState, numElements, ringBits, quant, numServers, serverIndex,
        minClients, model);
  }

  /** Whether both describe the same job (id, update length, ring and quantization). */
  public boolean sameJob(RoundInfo other) {
    return jobId.equals(other.jobId)
        && numElements == other.numElements
        && ringBits == other.ringBits
        && quant.equals(other.quant);
  }

  @Override
  public String toString() {
    return "RoundInfo(job="
        + Text.clean(jobId, 80)
        + ", round="
        + round
        + ", "
        + state.wireName()
        + ", num_elements="
        + numElements
        + ", ring_bits="
        + ringBits
        + ", "
        + quant
        + ", server "
        + serverIndex
        + " of "
        + numServers
        + ", min_clients="
        + minClients
        + ", model="
        + model.length
        + " floats)";
  }
}
