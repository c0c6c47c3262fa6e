package io.cryptenlite.edge;

import crypten_lite.v1.EdgeGrpc;
import crypten_lite.v1.EdgeOuterClass.AdvertiseRequest;
import crypten_lite.v1.EdgeOuterClass.InferReply;
import crypten_lite.v1.EdgeOuterClass.InferRequest;
import crypten_lite.v1.EdgeOuterClass.MaskedInputRequest;
import crypten_lite.v1.EdgeOuterClass.RoundInfoReply;
import crypten_lite.v1.EdgeOuterClass.RoundInfoRequest;
import crypten_lite.v1.EdgeOuterClass.SecAggStateReply;
import crypten_lite.v1.EdgeOuterClass.SecAggStateRequest;
import crypten_lite.v1.EdgeOuterClass.ShareKeysRequest;
import crypten_lite.v1.EdgeOuterClass.SubmitRequest;
import crypten_lite.v1.EdgeOuterClass.UnmaskRequest;
import io.grpc.CallCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.io.Closeable;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One server as this client sees it ({@code crypten_lite.client.links.GrpcServerLink}): blocking
 * unary calls, each with a deadline of {@link LinkOptions#callTimeoutMillis()}.
 *
 * <p>Retries: an UNAVAILABLE refusal (server not up yet, not ready, busy, connection or TLS
 * failure) is retried with backoff 50 ms doubling to 1 s until {@link
 * LinkOptions#connectTimeoutMillis()} has passed, then raised; before each retry the channel's
 * reconnect backoff is reset so a server that just came up is reached at once. A submit whose
 * attempt timed out is retried the same way (it may have landed): a later DUPLICATE counts as
 * delivered only when the server says it holds this very upload ({@link
 * EdgeRefusalException#isOwnDuplicate()}); any other refusal is raised at once.
 *
 * <p>SecAgg (single server, {@link SecAggLink}): a state request is retried like the round info;
 * a long poll's deadline grows by the time it asks the server to wait. The four SecAgg uploads
 * retry UNAVAILABLE only, never a timeout (the upload may have landed; the caller decides).
 * {@link #secAggReceivedBytes()} counts the serialized state replies.
 *
 * <p>What travels: the requests built by {@link EdgeWire} and {@link SecAggWire} (a seed or the
 * masked vector goes to this server only). Nothing is logged.
 */
public final class ServerLink implements Closeable, SecAggLink {
  static final long FIRST_BACKOFF_MILLIS = 50;
  static final long MAX_BACKOFF_MILLIS = 1000;

  private final String address;
  private final ManagedChannel channel;
  private final CallCredentials credentials;
  private final LinkOptions options;
  private final AtomicLong secAggReceived = new AtomicLong();

  /**
   * @param address the server's {@code host:port}, for messages
   * @param channel the channel to it (closed by {@link #close()})
   * @param credentials per-call credentials (an operator token), or null
   */
  public ServerLink(
      String address, ManagedChannel channel, CallCredentials credentials, LinkOptions options) {
    this.address = address;
    this.channel = channel;
    this.credentials = credentials;
    this.options = options;
  }

  /** Opens the channel with {@code factory}. */
  public static ServerLink open(
      String address,
      String serverIdentity,
      ChannelFactory factory,
      CallCredentials credentials,
      LinkOptions options) {
    return new ServerLink(
        address, factory.open(address, serverIdentity, options), credentials, options);
  }

  public String address() {
    return address;
  }

  public LinkOptions options() {
    return options;
  }

  /** The server's round info. */
  @Override
  public RoundInfo roundInfo() throws EdgeException {
    RoundInfoReply reply =
        retry(stub -> stub.roundInfo(RoundInfoRequest.getDefaultInstance()), false);
    return RoundInfo.fromReply(reply);
  }

  /** Sends one server's part of an upload; returns the request's size in bytes. */
  public int submit(SubmitRequest request) throws EdgeException {
    retry(stub -> stub.submit(request), true);
    return request.getSerializedSize();
  }

  /** Sends one server's part of an inference input; returns its output share. */
  public InferenceShare infer(InferRequest request) throws EdgeException {
    InferReply reply = retry(stub -> stub.infer(request), false);
    return EdgeWire.inferenceShare(reply, options.maxMessageBytes());
  }

  @Override
  public SecAggState secAggState(long round, SecAggStage known, long waitMillis)
      throws EdgeException {
    SecAggStateRequest request = SecAggWire.stateRequest(round, known, waitMillis);
    long waited = Integer.toUnsignedLong(request.getWaitMs());
    SecAggStateReply reply = retry(stub -> stub.secAggState(request), false, waited);
    secAggReceived.addAndGet(reply.getSerializedSize());
    return SecAggWire.state(reply);
  }

  @Override
  public int advertise(AdvertiseRequest request) throws EdgeException {
    retry(stub -> stub.advertise(request), false);
    return request.getSerializedSize();
  }

  @Override
  public int shareKeys(ShareKeysRequest request) throws EdgeException {
    retry(stub -> stub.shareKeys(request), false);
    return request.getSerializedSize();
  }

  @Override
  public int submitMasked(MaskedInputRequest request) throws EdgeException {
    retry(stub -> stub.submitMasked(request), false);
    return request.getSerializedSize();
  }

  @Override
  public int unmask(UnmaskRequest request) throws EdgeException {
    retry(stub -> stub.unmask(request), false);
    return request.getSerializedSize();
  }

  @Override
  public long secAggReceivedBytes() {
    return secAggReceived.get();
  }

  @Override
  public void close() {
    channel.shutdown();
    try {
      if (!channel.awaitTermination(2, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException err) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public String toString() {
    return "ServerLink(" + address + ")";
  }

  interface Call<T> {
    T run(EdgeGrpc.EdgeBlockingStub stub);
  }

  private EdgeGrpc.EdgeBlockingStub stub(long extraMillis) {
    EdgeGrpc.EdgeBlockingStub stub =
        EdgeGrpc.newBlockingStub(channel)
            .withDeadlineAfter(options.callTimeoutMillis() + extraMillis, TimeUnit.MILLISECONDS);
    return credentials == null ? stub : stub.withCallCredentials(credentials);
  }

  <T> T retry(Call<T> call, boolean submit) throws EdgeException {
    return retry(call, submit, 0);
  }

  /** {@link #retry(Call, boolean)} with each attempt's deadline {@code extraMillis} later. */
  <T> T retry(Call<T> call, boolean submit, long extraMillis) throws EdgeException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(options.connectTimeoutMillis());
    long backoff = FIRST_BACKOFF_MILLIS;
    boolean attempted = false;
    while (true) {
      try {
        return call.run(stub(extraMillis));
      } catch (StatusRuntimeException failure) {
        EdgeException err =
            StatusErrors.fromStatus(
                failure.getStatus(), address, options.callTimeoutMillis() + extraMillis);
        if (err instanceof EdgeRefusalException) {
          EdgeRefusalException refusal = (EdgeRefusalException) err;
          if (submit && attempted && refusal.isOwnDuplicate()) {
            return null; // an earlier attempt of this very upload landed
          }
          if (refusal.refusal() != Refusal.UNAVAILABLE) {
            throw refusal;
          }
          if (System.nanoTime() - deadline >= 0) {
            throw new EdgeRefusalException(
                Refusal.UNAVAILABLE,
                "server "
                    + address
                    + " still unavailable after "
                    + StatusErrors.seconds(options.connectTimeoutMillis())
                    + "s: "
                    + refusal.detail());
          }
        } else if (err instanceof EdgeTimeoutException) {
          if (!submit || System.nanoTime() - deadline >= 0) {
            throw err;
          }
        } else {
          throw err;
        }
      }
      attempted = true;
      long remaining = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
      channel.resetConnectBackoff();
      try {
        Thread.sleep(Math.max(0, Math.min(backoff, remaining)));
      } catch (InterruptedException err) {
        Thread.currentThread().interrupt();
        throw new EdgeCommunicationException("interrupted while retrying server " + address);
      }
      backoff = Math.min(2 * backoff, MAX_BACKOFF_MILLIS);
    }
  }
}
