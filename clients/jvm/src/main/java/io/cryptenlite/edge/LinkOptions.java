package io.cryptenlite.edge;

/**
 * Timing and size limits of a {@link ServerLink} (defaults as the Python client's {@code
 * ClientConfig}): each call's deadline ({@code callTimeoutMillis}, 30 s), how long calls are
 * retried while a server is unreachable or not ready ({@code connectTimeoutMillis}, 30 s), and
 * the largest message expected ({@code maxMessageBytes}, 64 MiB).
 */
public final class LinkOptions {
  /** The servers' default edge message limit: 64 MiB. */
  public static final long DEFAULT_MAX_MESSAGE_BYTES = 64L << 20;

  private final long callTimeoutMillis;
  private final long connectTimeoutMillis;
  private final long maxMessageBytes;

  private LinkOptions(long callTimeoutMillis, long connectTimeoutMillis, long maxMessageBytes) {
    if (callTimeoutMillis <= 0 || connectTimeoutMillis < 0 || maxMessageBytes <= 0) {
      throw new IllegalArgumentException(
          "timeouts must be positive (connect: non-negative) and the message limit positive");
    }
    this.callTimeoutMillis = callTimeoutMillis;
    this.connectTimeoutMillis = connectTimeoutMillis;
    this.maxMessageBytes = maxMessageBytes;
  }

  /** 30 s per call, 30 s of retries while unavailable, 64 MiB messages. */
  public static LinkOptions defaults() {
    return new LinkOptions(30_000, 30_000, DEFAULT_MAX_MESSAGE_BYTES);
  }

  public LinkOptions withCallTimeoutMillis(long millis) {
    return new LinkOptions(millis, connectTimeoutMillis, maxMessageBytes);
  }

  public LinkOptions withConnectTimeoutMillis(long millis) {
    return new LinkOptions(callTimeoutMillis, millis, maxMessageBytes);
  }

  public LinkOptions withMaxMessageBytes(long bytes) {
    return new LinkOptions(callTimeoutMillis, connectTimeoutMillis, bytes);
  }

  public long callTimeoutMillis() {
    return callTimeoutMillis;
  }

  public long connectTimeoutMillis() {
    return connectTimeoutMillis;
  }

  public long maxMessageBytes() {
    return maxMessageBytes;
  }

  /** What a channel should accept: the message limit plus 64 KiB of framing. */
  public int maxInboundBytes() {
    return (int) Math.min(Integer.MAX_VALUE, maxMessageBytes + (64 << 10));
  }
}
