package io.cryptenlite.edge;

/**
 * What one update upload cost (public): the round, the serialized request size sent to each
 * server (without gRPC/TLS framing), their total and the plaintext size {@code num_elements *
 * ring_bits / 8}.
 */
public final class UploadReport {
  private final long round;
  private final int[] bytesPerServer;
  private final long plaintextBytes;

  UploadReport(long round, int[] bytesPerServer, long plaintextBytes) {
    this.round = round;
    this.bytesPerServer = bytesPerServer.clone();
    this.plaintextBytes = plaintextBytes;
  }

  public long round() {
    return round;
  }

  /** Request bytes sent to server {@code i} at index {@code i}. */
  public int[] bytesPerServer() {
    return bytesPerServer.clone();
  }

  public long totalBytes() {
    long total = 0;
    for (int bytes : bytesPerServer) {
      total += bytes;
    }
    return total;
  }

  public long plaintextBytes() {
    return plaintextBytes;
  }

  @Override
  public String toString() {
    return "UploadReport(round=" + round + ", bytes=" + java.util.Arrays.toString(bytesPerServer)
        + ", total=" + totalBytes() + ", plaintext=" + plaintextBytes + ")";
  }
}
