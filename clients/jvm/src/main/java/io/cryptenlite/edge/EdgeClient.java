package io.cryptenlite.edge;

import crypten_lite.v1.EdgeOuterClass.InferRequest;
import crypten_lite.v1.EdgeOuterClass.SubmitRequest;
import io.grpc.CallCredentials;
import java.io.Closeable;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * The edge client of one job ({@code crypten_lite.client.EdgeClient}); {@code links.get(i)}
 * reaches server {@code i}.
 *
 * <p>Update upload: {@link UpdateEncoder} encodes the float update into the round's ring,
 * {@link SeedSplit} shares it: servers {@code 0..k-2} each receive a fresh 32-byte seed,
 * server {@code k-1} the masked vector, all with the same fresh 16-byte nonce. Upload = {@code
 * m * ring_bits / 8} bytes + about 60 bytes per seed server + about 30 bytes of header.
 *
 * <p>Private inference: the input is fixed point with {@code fracBits} in the 64-bit ring,
 * shared the same way and sent to every server at once; each answers with its share of the
 * output, which only this client sums and decodes.
 *
 * <p>Secret: the update, the inference input and output, the seeds and the masked vector. No
 * server sees more than its own share; nothing is logged or printed.
 */
public final class EdgeClient implements Closeable {
  static final int QUERY_ID_SIZE = 16;
  static final long FIRST_POLL_MILLIS = 100;

  private final List<ServerLink> links;
  private final SecureRandom random;

  /** A client over {@code links} in server-index order (2 to 8 servers). */
  public EdgeClient(List<ServerLink> links) {
    this(links, new SecureRandom());
  }

  EdgeClient(List<ServerLink> links, SecureRandom random) {
    if (links.size() < 2 || links.size() > SeedSplit.MAX_SERVERS) {
      throw new IllegalArgumentException(
          "an edge client needs 2 to " + SeedSplit.MAX_SERVERS + " servers, got " + links.size());
    }
    this.links = new ArrayList<>(links);
    this.random = random;
  }

  /**
   * Opens a link to every server: {@code addresses.get(i)} must present the certificate identity
   * {@code identities.get(i)} (default {@code party-<i>} when {@code identities} is null).
   *
   * @param credentials per-call credentials ({@link TokenCredentials}) or null
   */
  public static EdgeClient connect(
      List<String> addresses,
      List<String> identities,
      ChannelFactory factory,
      CallCredentials credentials,
      LinkOptions options) {
    if (identities != null && identities.size() != addresses.size()) {
      throw new IllegalArgumentException(
          addresses.size() + " servers but " + identities.size() + " identities");
    }
    List<ServerLink> links = new ArrayList<>();
    for (int i = 0; i < addresses.size(); i++) {
      String identity = identities == null ? "party-" + i : identities.get(i);
      links.add(ServerLink.open(addresses.get(i), identity, factory, credentials, options));
    }
    return new EdgeClient(links);
  }

  public int numServers() {
    return links.size();
  }

  /**
   * Every server's round info, checked for consistency: each must say it is server {@code i}
   * of {@link #numServers()} and agree with server 0 on the job (id, length, ring,
   * quantization). Returns server 0's info with state FINISHED if any server finished, CLOSED
   * while the servers disagree on the round or its state.
   *
   * @throws EdgeCommunicationException when the servers are inconsistent
   */
  public RoundInfo roundInfo() throws EdgeException {
    List<RoundInfo> infos = new ArrayList<>();
    for (ServerLink link : links) {
      infos.add(link.roundInfo());
    }
    RoundInfo first = infos.get(0);
    for (int index = 0; index < infos.size(); index++) {
      RoundInfo info = infos.get(index);
      if (info.serverIndex() != index || info.numServers() != numServers()) {
        throw new EdgeCommunicationException(
            "server " + index + " says it is server " + info.serverIndex() + " of "
                + info.numServers() + "; this client has " + numServers() + " servers");
      }
      if (!info.sameJob(first)) {
        throw new EdgeCommunicationException(
            "server " + index + " disagrees with server 0 on the job");
      }
    }
    for (RoundInfo info : infos) {
      if (info.state() == RoundState.FINISHED) {
        return first.withState(RoundState.FINISHED);
      }
    }
    for (RoundInfo info : infos) {
      if (info.round() != first.round() || info.state() != first.state()) {
        return first.withState(RoundState.CLOSED);
      }
    }
    return first;
  }

  /**
   * Polls {@link #roundInfo()} until a round {@code > after} is OPEN on every server, or the
   * job FINISHED (check {@link RoundInfo#state()}); polls back off from 0.1 s doubling to 1 s.
   *
   * @throws EdgeTimeoutException if no such round opened within {@code timeoutMillis}
   */
  public RoundInfo waitForRound(long after, long timeoutMillis) throws EdgeException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    long delay = FIRST_POLL_MILLIS;
    while (true) {
      RoundInfo info = roundInfo();
      if (info.state() == RoundState.FINISHED
          || (info.state() == RoundState.OPEN && info.round() > after)) {
        return info;
      }
      if (System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(delay) - deadline > 0) {
        throw new EdgeTimeoutException(
            "no round after " + after + " opened within "
                + StatusErrors.seconds(timeoutMillis) + "s");
      }
      try {
        Thread.sleep(delay);
      } catch (InterruptedException err) {
        Thread.currentThread().interrupt();
        throw new EdgeCommunicationException("interrupted while waiting for a round");
      }
      delay = Math.min(2 * delay, 1000);
    }
  }

  /**
   * Encodes, shares and uploads the update {@code x} ({@code info.numElements()} values) for
   * {@code info.round()}.
   *
   * @throws EncodingException for a wrong length, NaN or infinity (nothing is sent)
   */
  public UploadReport submitUpdate(double[] x, RoundInfo info) throws EdgeException {
    return submitUpdate(x, info, true);
  }

  /** {@link #submitUpdate(double[], RoundInfo)} of a float update. */
  public UploadReport submitUpdate(float[] x, RoundInfo info) throws EdgeException {
    return submitUpdate(UpdateEncoder.widen(x), info, true);
  }

  /**
   * As {@link #submitUpdate(double[], RoundInfo)}; with {@code checkLength} false an update of
   * the wrong length is sent as it is (declaring {@code x.length} elements) and the servers'
   * INVALID refusal comes back verbatim, which the CLI uses so an operator sees the servers'
   * verdict. Uploads go to servers 0..k-1 in order; the first refusal stops the upload.
   */
  public UploadReport submitUpdate(double[] x, RoundInfo info, boolean checkLength)
      throws EdgeException {
    if (info.numServers() != numServers()) {
      throw new IllegalArgumentException(
          "the round is shared among " + info.numServers() + " servers; this client has "
              + numServers());
    }
    if (checkLength && x.length != info.numElements()) {
      throw new EncodingException(
          "x has " + x.length + " values; round " + info.round() + " expects "
              + info.numElements());
    }
    long[] ring = UpdateEncoder.encode(x, info.quant(), info.ringBits());
    SeedSplit split = SeedSplit.split(ring, numServers(), info.ringBits(), random);
    byte[] nonce = new byte[EdgeWire.NONCE_SIZE];
    random.nextBytes(nonce);
    int[] sizes = new int[numServers()];
    for (int index = 0; index < numServers(); index++) {
      boolean seed = split.takesSeed(index);
      SubmitRequest request =
          EdgeWire.submitRequest(
              info.round(),
              nonce,
              ring.length,
              info.ringBits(),
              seed ? split.seed(index) : null,
              seed ? null : split.masked());
      sizes[index] = links.get(index).submit(request);
    }
    return new UploadReport(info.round(), sizes, (long) ring.length * info.ringBits() / 8);
  }

  /**
   * Runs {@code model} on {@code x} (of {@code shape}) without any server seeing {@code x} or
   * the output: shares the fixed-point input with every server (all queries at once), sums
   * their output shares mod 2^64 and decodes them. Returns the output flattened (row-major, in
   * the servers' output shape). The first server's error, in server order, is raised.
   *
   * @throws EncodingException for NaN, infinity or values beyond the fixed-point range
   */
  public double[] infer(String model, long[] shape, double[] x, int fracBits)
      throws EdgeException {
    if (EdgeWire.product(shape) != x.length) {
      throw new IllegalArgumentException(
          "shape " + Arrays.toString(shape) + " does not hold " + x.length + " values");
    }
    long[] ring = FixedPoint.encode(x, fracBits);
    SeedSplit split = SeedSplit.split(ring, numServers(), 64, random);
    byte[] queryId = new byte[QUERY_ID_SIZE];
    random.nextBytes(queryId);
    List<InferRequest> requests = new ArrayList<>();
    for (int index = 0; index < numServers(); index++) {
      boolean seed = split.takesSeed(index);
      requests.add(
          EdgeWire.inferRequest(
              queryId, model, shape, fracBits,
              seed ? split.seed(index) : null, seed ? null : split.masked()));
    }
    List<InferenceShare> shares = queryAll(requests);
    InferenceShare first = shares.get(0);
    for (int index = 0; index < shares.size(); index++) {
      InferenceShare share = shares.get(index);
      if (!Arrays.equals(share.queryId(), queryId)
          || !Arrays.equals(share.shape(), first.shape())
          || share.fracBits() != first.fracBits()) {
        throw new EdgeCommunicationException(
            "server " + index + "'s output share does not match the query or server 0's");
      }
    }
    long[] total = new long[first.words().length];
    for (InferenceShare share : shares) {
      long[] words = share.words();
      for (int i = 0; i < total.length; i++) {
        total[i] += words[i]; // mod 2^64
      }
    }
    return FixedPoint.decode(total, first.fracBits());
  }

  // Every server answers only once all of them hold their part of the input, so the queries
  // go out at the same time (one thread per server).
  private List<InferenceShare> queryAll(List<InferRequest> requests) throws EdgeException {
    ExecutorService pool =
        Executors.newFixedThreadPool(
            numServers(),
            task -> {
              Thread thread = new Thread(task, "cl-infer");
              thread.setDaemon(true);
              return thread;
            });
    try {
      List<Future<InferenceShare>> futures = new ArrayList<>();
      for (int index = 0; index < numServers(); index++) {
        ServerLink link = links.get(index);
        InferRequest request = requests.get(index);
        futures.add(pool.submit(() -> link.infer(request)));
      }
      List<InferenceShare> shares = new ArrayList<>();
      for (Future<InferenceShare> future : futures) {
        try {
          shares.add(future.get());
        } catch (ExecutionException err) {
          Throwable cause = err.getCause();
          if (cause instanceof EdgeException) {
            throw (EdgeException) cause;
          }
          if (cause instanceof RuntimeException) {
            throw (RuntimeException) cause;
          }
          throw new EdgeCommunicationException("inference query failed", cause);
        }
      }
      return shares;
    } catch (InterruptedException err) {
      Thread.currentThread().interrupt();
      throw new EdgeCommunicationException("interrupted while waiting for the servers");
    } finally {
      pool.shutdownNow();
    }
  }

  @Override
  public void close() {
    for (ServerLink link : links) {
      link.close();
    }
  }
}
