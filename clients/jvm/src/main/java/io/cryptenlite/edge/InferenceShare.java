package io.cryptenlite.edge;

/**
 * One server's share of a private-inference output (64-bit ring, fixed point with {@code
 * fracBits}). Secret: the share (with the other servers' shares it gives the output).
 */
public final class InferenceShare {
  private final byte[] queryId;
  private final long[] shape;
  private final int fracBits;
  private final long[] share;

  InferenceShare(byte[] queryId, long[] shape, int fracBits, long[] share) {
    this.queryId = queryId.clone();
    this.shape = shape.clone();
    this.fracBits = fracBits;
    this.share = share;
  }

  public byte[] queryId() {
    return queryId.clone();
  }

  public long[] shape() {
    return shape.clone();
  }

  public int fracBits() {
    return fracBits;
  }

  long[] words() {
    return share;
  }

  @Override
  public String toString() {
    return "InferenceShare(shape=" + java.util.Arrays.toString(shape) + ", frac_bits="
        + fracBits + ", <hidden>)";
  }
}
