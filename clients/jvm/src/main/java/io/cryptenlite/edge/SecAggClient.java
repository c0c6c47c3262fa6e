package io.cryptenlite.edge;

import crypten_lite.v1.EdgeOuterClass.AdvertiseRequest;
import crypten_lite.v1.EdgeOuterClass.MaskedInputRequest;
import crypten_lite.v1.EdgeOuterClass.ShareKeysRequest;
import crypten_lite.v1.EdgeOuterClass.UnmaskRequest;
import io.grpc.CallCredentials;
import java.io.Closeable;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

/**
 * The client side of single-server secure aggregation (SecAgg, Bonawitz et al., CCS 2017;
 * SecAgg+, Bell et al., CCS 2020), as {@code crypten_lite.client.secagg_client.SecAggClient}:
 * one {@link SecAggLink} to the job's one server.
 *
 * <p>Per round ({@link #runRound}, or the four stage methods for a caller that drives the
 * stages itself):
 *
 * <ol>
 *   <li>{@link #advertise}: two fresh X25519 public keys;
 *   <li>{@link #shareKeys}: Shamir-share ({@code t} of {@code d}) the fresh 32-byte self-mask
 *       seed {@code b} and the mask private key among the {@code d} neighbours the server names,
 *       each pair of shares sealed (AES-256-GCM) for its neighbour, plus a commitment to {@code
 *       b};
 *   <li>{@link #maskedInput}: open the shares relayed to this client, then upload {@code y =
 *       encode(x) + PRG(b) + sum over v in shared of sign(u, v) * PRG(s_uv) mod 2^ring_bits}
 *       ({@code sign = +1} if {@code u < v} else {@code -1}) over exactly the neighbours that
 *       shared keys, with the senders whose share failed authentication as complaints;
 *   <li>{@link #unmask}: self-mask shares of surviving neighbours and mask-key shares of dropped
 *       ones, never both for one neighbour, once per round.
 * </ol>
 *
 * <p>What the client refuses ({@link SecAggProtocolException}, nothing sent): a threshold that
 * does not satisfy {@code 2 <= t} and {@code d/2 < t <= d}; a neighbour list that is empty,
 * repeats a client, names this client or in which two keys are equal; a sharing set that is not
 * among its neighbours or repeats one; a relayed share not from a sharing neighbour, not
 * addressed to it, or repeated; an unmasking request that names a client both survivor and
 * dropped, asks about clients it did not mask with, repeats a client, or comes a second time. A
 * relayed share that fails authentication is not used and its sender becomes a complaint; the
 * round goes on. A STALE refusal of an upload, a FAILED state, a stage that moved on without
 * this client, or fewer sharing neighbours than {@code t} raise {@link
 * SecAggRoundFailedException} with the server's reason.
 *
 * <p>Cost ({@code d} neighbours, {@code m} elements): {@code 3d + 2} X25519 operations, {@code
 * 2d} Shamir evaluations of degree {@code t - 1}, {@code d + 1} keystreams of {@code m *
 * ring_bits / 8} bytes; upload {@code m * ring_bits / 8} + about {@code 240 d + 100} bytes
 * (measured: 834 bytes besides the vector for {@code d = 3}, 1560 for {@code d = 6}).
 *
 * <p>Secret: the update, the private keys, the self-mask seed, pair seeds and every Shamir share
 * (those it makes and those it receives). Nothing is logged or printed; a new round and {@link
 * #close()} wipe the previous round's keys and seed. Not thread-safe: one round at a time.
 */
public final class SecAggClient implements Closeable {
  /** How long one state request asks the server to wait for the stage to change. */
  public static final long LONG_POLL_MILLIS = 10_000;

  static final long DEFAULT_POLL_MILLIS = 50;
  static final long MAX_POLL_MILLIS = 500;
  static final long MAX_ROUND_POLL_MILLIS = 1000;

  private final SecAggLink link;
  private final SecureRandom random;
  private final long pollMillis;
  private Secrets round;
  private long cpuNanos;
  private long sent;
  private long masked;
  private long receivedAtStart;
  private int polls;

  /** A client over {@code link} (fresh randomness from {@link SecureRandom}). */
  public SecAggClient(SecAggLink link) {
    this(link, new SecureRandom(), DEFAULT_POLL_MILLIS);
  }

  /**
   * @param pollMillis the first delay between polls when the server answers without waiting
   *     (doubling to 0.5 s for stages, to 1 s for rounds)
   */
  public SecAggClient(SecAggLink link, SecureRandom random, long pollMillis) {
    if (link == null || random == null || pollMillis <= 0) {
      throw new IllegalArgumentException("a link, a SecureRandom and a positive poll delay are needed");
    }
    this.link = link;
    this.random = random;
    this.pollMillis = pollMillis;
  }

  /**
   * Opens the link to the job's one server at {@code address}, which must present the
   * certificate identity {@code serverIdentity} (usually {@code party-0}).
   *
   * @param credentials per-call credentials ({@link TokenCredentials}) or null
   */
  public static SecAggClient connect(
      String address,
      String serverIdentity,
      ChannelFactory factory,
      CallCredentials credentials,
      LinkOptions options) {
    return new SecAggClient(ServerLink.open(address, serverIdentity, factory, credentials, options));
  }

  /** The server's round info. */
  public RoundInfo roundInfo() throws EdgeException {
    return link.roundInfo();
  }

  /**
   * Polls until a round {@code > after} is OPEN (keys being advertised) or the job FINISHED;
   * backoff from the poll delay doubling to 1 s.
   *
   * @throws EdgeTimeoutException if no such round opened within {@code timeoutMillis}
   */
  public RoundInfo waitForRound(long after, long timeoutMillis) throws EdgeException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    long delay = pollMillis;
    while (true) {
      RoundInfo info = link.roundInfo();
      if (info.state() == RoundState.FINISHED
          || (info.state() == RoundState.OPEN && info.round() > after)) {
        return info;
      }
      if (System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(delay) - deadline > 0) {
        throw new EdgeTimeoutException(
            "no round after " + after + " opened within " + StatusErrors.seconds(timeoutMillis)
                + "s");
      }
      sleep(delay);
      delay = Math.min(2 * delay, MAX_ROUND_POLL_MILLIS);
    }
  }

  // -- the four stages ------------------------------------------------------------------------

  /**
   * Makes this round's keys and advertises them; returns the request's bytes.
   *
   * @throws IllegalArgumentException if the job is shared among several servers (use {@link
   *     EdgeClient})
   * @throws SecAggRoundFailedException if the round is not open for keys
   */
  public int advertise(RoundInfo info) throws EdgeException {
    long started = cpu();
    if (info.numServers() != 1) {
      throw new IllegalArgumentException(
          "the job is shared among " + info.numServers() + " servers; single-server secure"
              + " aggregation needs exactly 1 (use EdgeClient)");
    }
    if (info.state() != RoundState.OPEN) {
      throw new SecAggRoundFailedException("round " + info.round() + " is not open for keys");
    }
    Secrets fresh = new Secrets(info, SecAggCrypto.RoundKeys.generate(random));
    if (round != null) {
      round.destroy();
    }
    round = fresh;
    cpuNanos = 0;
    sent = 0;
    masked = 0;
    polls = 0;
    receivedAtStart = link.secAggReceivedBytes();
    AdvertiseRequest request =
        SecAggWire.advertiseRequest(
            info.round(), fresh.keys.cipherPublic(), fresh.keys.maskPublic());
    charge(started);
    int size = send(() -> link.advertise(request));
    sent += size;
    return size;
  }

  /**
   * Shamir-shares the self-mask seed and the mask key among the neighbours {@code state} names
   * (stage SHARE_KEYS) and uploads the sealed shares with the seed commitment.
   */
  public int shareKeys(SecAggState state) throws EdgeException {
    long started = cpu();
    Secrets own = expect(state, SecAggStage.SHARE_KEYS);
    List<NeighbourKey> neighbours = checkNeighbours(state);
    own.index = state.index();
    own.threshold = state.threshold();
    own.neighbours.clear();
    for (NeighbourKey n : neighbours) {
      own.neighbours.put(n.index(), n);
    }
    if (own.seed != null) {
      Arrays.fill(own.seed, (byte) 0);
    }
    own.seed = new byte[SeedExpander.SEED_SIZE];
    random.nextBytes(own.seed);
    long[] xs = new long[neighbours.size()];
    for (int i = 0; i < xs.length; i++) {
      xs[i] = neighbours.get(i).index();
    }
    int t = (int) own.threshold;
    BigInteger[] seedShares = Shamir.share(own.seed, xs, t, random);
    BigInteger[] keyShares = Shamir.share(own.keys.maskPrivate(), xs, t, random);
    List<EncryptedShare> shares = new ArrayList<>();
    for (int i = 0; i < xs.length; i++) {
      NeighbourKey n = neighbours.get(i);
      byte[] key =
          SecAggCrypto.shareKey(
              own.keys.cipherPrivate(), n.cipherPublic(), own.context, own.index, n.index());
      byte[] plain =
          SecAggCrypto.concat(Shamir.encodeShare(seedShares[i]), Shamir.encodeShare(keyShares[i]));
      try {
        shares.add(
            new EncryptedShare(
                own.index,
                n.index(),
                SecAggCrypto.seal(key, own.context, own.index, n.index(), plain, random)));
      } finally {
        Arrays.fill(key, (byte) 0);
        Arrays.fill(plain, (byte) 0);
      }
    }
    ShareKeysRequest request =
        SecAggWire.shareKeysRequest(
            state.round(), SecAggCrypto.commitSeed(own.context, own.index, own.seed), shares);
    charge(started);
    int size = send(() -> link.shareKeys(request));
    sent += size;
    return size;
  }

  /**
   * Opens the shares relayed to this client, masks the encoded update {@code x} with the
   * self-mask and the pairwise masks of exactly the neighbours that shared keys (stage
   * MASKED_INPUT) and uploads it.
   *
   * @throws EncodingException for a wrong length, NaN or infinity (nothing is sent)
   */
  public int maskedInput(SecAggState state, double[] x) throws EdgeException {
    long started = cpu();
    Secrets own = expect(state, SecAggStage.MASKED_INPUT);
    RoundInfo info = own.info;
    long[] shared = state.shared();
    Set<Long> sharedSet = new HashSet<>();
    for (long v : shared) {
      if (!sharedSet.add(v) || !own.neighbours.containsKey(v)) {
        throw new SecAggProtocolException(
            "the server lists a sharing neighbour this client never had");
      }
    }
    if (shared.length < own.threshold) {
      throw new SecAggRoundFailedException(
          "only " + shared.length + " neighbours shared keys, fewer than the threshold "
              + own.threshold);
    }
    openInbox(own, state, sharedSet);
    long[] ring = UpdateEncoder.encode(x, info.quant(), info.ringBits());
    if (ring.length != info.numElements()) {
      throw new EncodingException(
          "x has " + ring.length + " values; round " + info.round() + " expects "
              + info.numElements());
    }
    int bits = info.ringBits();
    long[] y = SeedExpander.expand(own.seed, ring.length, bits);
    for (int i = 0; i < y.length; i++) {
      y[i] += ring[i];
    }
    for (long v : shared) {
      byte[] seed =
          SecAggCrypto.pairSeed(
              own.keys.maskPrivate(), own.neighbours.get(v).maskPublic(), own.context,
              own.index, v);
      long[] mask = SeedExpander.expand(seed, ring.length, bits);
      Arrays.fill(seed, (byte) 0);
      if (SecAggCrypto.maskSign(own.index, v) > 0) {
        for (int i = 0; i < y.length; i++) {
          y[i] += mask[i];
        }
      } else {
        for (int i = 0; i < y.length; i++) {
          y[i] -= mask[i];
        }
      }
      Arrays.fill(mask, 0);
    }
    for (int i = 0; i < y.length; i++) {
      y[i] = RingWords.reduce(y[i], bits); // long arithmetic is mod 2^64
    }
    Arrays.fill(ring, 0);
    own.maskedWith = shared.clone();
    MaskedInputRequest request =
        SecAggWire.maskedRequest(state.round(), ring.length, bits, y, own.complaints);
    Arrays.fill(y, 0);
    charge(started);
    int size = send(() -> link.submitMasked(request));
    sent += size;
    masked = size;
    return size;
  }

  private void openInbox(Secrets own, SecAggState state, Set<Long> shared)
      throws SecAggProtocolException {
    Map<Long, BigInteger[]> received = new LinkedHashMap<>();
    Set<Long> seen = new HashSet<>();
    TreeSet<Long> complaints = new TreeSet<>();
    for (EncryptedShare item : state.inbox()) {
      long sender = item.sender();
      if (!shared.contains(sender) || item.receiver() != own.index || !seen.add(sender)) {
        throw new SecAggProtocolException(
            "the server relayed an unexpected share from " + sender);
      }
      byte[] key =
          SecAggCrypto.shareKey(
              own.keys.cipherPrivate(), own.neighbours.get(sender).cipherPublic(), own.context,
              own.index, sender);
      byte[] plain = null;
      try {
        plain = SecAggCrypto.open(key, own.context, sender, own.index, item.sealed());
        BigInteger seedShare = Shamir.decodeShare(plain, 0, Math.min(plain.length, Shamir.SHARE_SIZE));
        BigInteger keyShare =
            Shamir.decodeShare(plain, Shamir.SHARE_SIZE, Math.max(0, plain.length - Shamir.SHARE_SIZE));
        received.put(sender, new BigInteger[] {seedShare, keyShare});
      } catch (ShareAuthenticationException | ShamirException err) {
        complaints.add(sender); // not used; reported to the server
      } finally {
        Arrays.fill(key, (byte) 0);
        if (plain != null) {
          Arrays.fill(plain, (byte) 0);
        }
      }
    }
    own.received = received;
    own.complaints = new long[complaints.size()];
    int i = 0;
    for (long v : complaints) {
      own.complaints[i++] = v;
    }
  }

  /**
   * Reveals self-mask shares of the surviving and mask-key shares of the dropped neighbours
   * (stage UNMASK), once per round.
   */
  public int unmask(SecAggState state) throws EdgeException {
    long started = cpu();
    Secrets own = expect(state, SecAggStage.UNMASK);
    if (own.answered) {
      throw new SecAggProtocolException(
          "already answered the unmasking of round " + state.round());
    }
    long[] survivorList = state.survivors();
    long[] droppedList = state.dropped();
    Set<Long> survivors = set(survivorList);
    Set<Long> dropped = set(droppedList);
    TreeSet<Long> both = new TreeSet<>(survivors);
    both.retainAll(dropped);
    if (!both.isEmpty()) {
      List<Long> first = new ArrayList<>(both).subList(0, Math.min(8, both.size()));
      throw new SecAggProtocolException(
          "the server names client(s) " + first + " both survivor and dropped: refusing to"
              + " reveal both shares");
    }
    Set<Long> maskedWith = set(own.maskedWith);
    if (!maskedWith.containsAll(survivors) || !maskedWith.containsAll(dropped)) {
      throw new SecAggProtocolException(
          "the server asks for shares of clients this client did not mask with");
    }
    if (survivorList.length != survivors.size() || droppedList.length != dropped.size()) {
      throw new SecAggProtocolException("the unmasking request repeats a client");
    }
    own.answered = true;
    UnmaskRequest request =
        SecAggWire.unmaskRequest(
            state.round(), pick(own.received, survivors, 0), pick(own.received, dropped, 1));
    charge(started);
    int size = send(() -> link.unmask(request));
    sent += size;
    return size;
  }

  // -- driving a round ------------------------------------------------------------------------

  /**
   * Long-polls until round {@code roundNumber} reaches {@code stage}. Each request tells the
   * server the stage last seen (at first the one before {@code stage}) and asks it to answer
   * when the stage changes, at most {@link #LONG_POLL_MILLIS} later; a server that answers
   * sooner without a change (its waiting budget is used up) is polled with backoff from the
   * poll delay to 0.5 s.
   *
   * @throws SecAggRoundFailedException if the round FAILED or moved past {@code stage}
   * @throws EdgeTimeoutException if {@code stage} was not reached within {@code timeoutMillis}
   */
  public SecAggState waitForStage(long roundNumber, SecAggStage stage, long timeoutMillis)
      throws EdgeException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    long delay = pollMillis;
    SecAggStage known = stage.previous(); // stages advance in order
    while (true) {
      long asked = System.nanoTime();
      long waitMillis =
          known == null
              ? 0
              : Math.max(0, Math.min(LONG_POLL_MILLIS, TimeUnit.NANOSECONDS.toMillis(deadline - asked)));
      SecAggState state = link.secAggState(roundNumber, known, waitMillis);
      polls++;
      if (state.round() != roundNumber) {
        throw new SecAggProtocolException(
            "asked for round " + roundNumber + ", got " + state.round());
      }
      if (state.stage() == SecAggStage.FAILED) {
        throw new SecAggRoundFailedException(
            state.failure().isEmpty() ? "round " + roundNumber + " failed" : state.failure());
      }
      if (state.stage().order() > stage.order() && stage != SecAggStage.DONE) {
        throw new SecAggRoundFailedException(
            "round " + roundNumber + " moved past " + stage.wireName() + " without this client"
                + (state.failure().isEmpty() ? "" : ": " + state.failure()));
      }
      if (state.stage() == stage) {
        return state;
      }
      long now = System.nanoTime();
      if (now - deadline >= 0) {
        throw new EdgeTimeoutException(
            "round " + roundNumber + " did not reach " + stage.wireName() + " within "
                + StatusErrors.seconds(timeoutMillis) + "s");
      }
      // the server answered without a change and sooner than asked (its waiting budget is used
      // up, or almost no time was left to ask for): back off instead of spinning
      if (known != null
          && state.stage() == known
          && (waitMillis == 0 || now - asked < TimeUnit.MILLISECONDS.toNanos(waitMillis) / 2)) {
        sleepNanos(Math.min(TimeUnit.MILLISECONDS.toNanos(delay), deadline - now));
        delay = Math.min(2 * delay, MAX_POLL_MILLIS);
      }
      known = state.stage();
    }
  }

  /**
   * All four stages of {@code info.round()} with the update {@code x}; returns once the server
   * holds the aggregate (DONE). {@code timeoutMillis} bounds the wait for each stage.
   *
   * @throws EncodingException for a wrong length, NaN or infinity (checked before anything is
   *     sent)
   * @throws SecAggRoundFailedException if the round fails or goes on without this client
   */
  public SecAggReport runRound(double[] x, RoundInfo info, long timeoutMillis)
      throws EdgeException {
    if (x.length != info.numElements()) {
      throw new EncodingException(
          "x has " + x.length + " values; round " + info.round() + " expects "
              + info.numElements());
    }
    Arrays.fill(UpdateEncoder.encode(x, info.quant(), info.ringBits()), 0); // NaN, infinity
    long number = info.round();
    advertise(info);
    shareKeys(waitForStage(number, SecAggStage.SHARE_KEYS, timeoutMillis));
    maskedInput(waitForStage(number, SecAggStage.MASKED_INPUT, timeoutMillis), x);
    unmask(waitForStage(number, SecAggStage.UNMASK, timeoutMillis));
    SecAggState last = waitForStage(number, SecAggStage.DONE, timeoutMillis);
    return report(last.stage());
  }

  /**
   * What the current round cost so far.
   *
   * @throws IllegalStateException if no round was started
   */
  public SecAggReport report(SecAggStage stage) {
    Secrets own = round;
    if (own == null) {
      throw new IllegalStateException("no round was started");
    }
    RoundInfo info = own.info;
    return new SecAggReport(
        info.round(),
        own.index,
        stage,
        own.neighbours.size(),
        sent,
        masked,
        link.secAggReceivedBytes() - receivedAtStart,
        info.numElements() * info.ringBits() / 8,
        cpuNanos / 1e9,
        own.complaints,
        polls);
  }

  /** Wipes the round's keys and seed and closes the link. */
  @Override
  public void close() {
    if (round != null) {
      round.destroy();
    }
    link.close();
  }

  // -- helpers --------------------------------------------------------------------------------

  private interface Upload {
    int call() throws EdgeException;
  }

  /** One upload; a STALE refusal (stage closed, or this client is out) fails the round. */
  private static int send(Upload upload) throws EdgeException {
    try {
      return upload.call();
    } catch (EdgeRefusalException err) {
      if (err.refusal() == Refusal.STALE) {
        throw new SecAggRoundFailedException(err.detail());
      }
      throw err;
    }
  }

  private Secrets expect(SecAggState state, SecAggStage stage) throws EdgeException {
    Secrets own = round;
    if (own == null || state.round() != own.info.round()) {
      throw new SecAggProtocolException("no keys were advertised for round " + state.round());
    }
    if (state.stage() == SecAggStage.FAILED) {
      throw new SecAggRoundFailedException(
          state.failure().isEmpty() ? "round " + state.round() + " failed" : state.failure());
    }
    if (state.stage() != stage) {
      throw new SecAggProtocolException(
          "round " + state.round() + " is at stage " + state.stage().wireName() + ", not "
              + stage.wireName());
    }
    if (!state.failure().isEmpty()) {
      throw new SecAggRoundFailedException(state.failure());
    }
    if (state.index() < 1 || (own.index != 0 && state.index() != own.index)) {
      throw new SecAggRoundFailedException("this client is not part of round " + state.round());
    }
    return own;
  }

  static List<NeighbourKey> checkNeighbours(SecAggState state) throws SecAggProtocolException {
    List<NeighbourKey> neighbours = state.neighbours();
    Set<Long> indices = new HashSet<>();
    boolean ok = !neighbours.isEmpty();
    for (NeighbourKey n : neighbours) {
      ok &= n.index() != state.index() && indices.add(n.index());
    }
    if (!ok) {
      throw new SecAggProtocolException(
          "the neighbour list is empty, repeats a client or names this one");
    }
    long d = neighbours.size();
    long t = state.threshold();
    if (t < 2 || !(d < 2 * t && 2 * t <= 2 * d)) {
      throw new SecAggProtocolException(
          "threshold " + t + " with " + d + " neighbours is unsafe (needs 2 <= t, neighbours/2 <"
              + " t <= neighbours: one neighbour alone must never hold enough shares)");
    }
    Set<ByteBuffer> keys = new HashSet<>();
    for (NeighbourKey n : neighbours) {
      keys.add(ByteBuffer.wrap(n.maskPublic()));
      keys.add(ByteBuffer.wrap(n.cipherPublic()));
    }
    if (keys.size() != 2 * neighbours.size()) {
      throw new SecAggProtocolException("two neighbours share a public key");
    }
    return neighbours;
  }

  /** The encoded shares ({@code which}: 0 self-mask seed, 1 mask key) held for {@code wanted}. */
  private static Map<Long, byte[]> pick(
      Map<Long, BigInteger[]> received, Set<Long> wanted, int which) {
    Map<Long, byte[]> out = new TreeMap<>();
    for (long v : new TreeSet<>(wanted)) {
      BigInteger[] shares = received.get(v);
      if (shares != null) { // not for a neighbour whose share failed authentication
        out.put(v, Shamir.encodeShare(shares[which]));
      }
    }
    return out;
  }

  private static Set<Long> set(long[] values) {
    Set<Long> out = new HashSet<>();
    for (long v : values) {
      out.add(v);
    }
    return out;
  }

  private static void sleep(long millis) throws EdgeCommunicationException {
    sleepNanos(TimeUnit.MILLISECONDS.toNanos(millis));
  }

  /** Sleeps {@code nanos} (a sub-millisecond rest sleeps about 1 ms: never a busy loop). */
  private static void sleepNanos(long nanos) throws EdgeCommunicationException {
    long wait = Math.max(1, nanos);
    try {
      Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
    } catch (InterruptedException err) {
      Thread.currentThread().interrupt();
      throw new EdgeCommunicationException("interrupted while waiting for the server");
    }
  }

  private void charge(long started) {
    cpuNanos += cpu() - started;
  }

  private static volatile boolean cpuClock = true;

  /** This thread's CPU time in ns (0 where the platform has none, e.g. Android). */
  private static long cpu() {
    if (!cpuClock) {
      return 0;
    }
    try {
      long nanos = ThreadCpu.nanos();
      if (nanos >= 0) {
        return nanos;
      }
    } catch (LinkageError | UnsupportedOperationException err) {
      // java.lang.management is absent (Android)
    }
    cpuClock = false;
    return 0;
  }

  /** Kept apart so that a platform without java.lang.management fails only here. */
  private static final class ThreadCpu {
    static long nanos() {
      java.lang.management.ThreadMXBean bean =
          java.lang.management.ManagementFactory.getThreadMXBean();
      return bean.isCurrentThreadCpuTimeSupported() ? bean.getCurrentThreadCpuTime() : -1;
    }
  }

  /** One round's secrets of this client (never printed). */
  private static final class Secrets {
    final RoundInfo info;
    final byte[] context;
    final SecAggCrypto.RoundKeys keys;
    byte[] seed;
    long index;
    long threshold;
    final Map<Long, NeighbourKey> neighbours = new LinkedHashMap<>();
    Map<Long, BigInteger[]> received = new LinkedHashMap<>();
    long[] maskedWith = new long[0];
    long[] complaints = new long[0];
    boolean answered;

    Secrets(RoundInfo info, SecAggCrypto.RoundKeys keys) {
      this.info = info;
      this.context = SecAggCrypto.roundContext(info.jobId(), info.round());
      this.keys = keys;
    }

    void destroy() {
      keys.destroy();
      if (seed != null) {
        Arrays.fill(seed, (byte) 0);
      }
      received.clear();
    }

    @Override
    public String toString() {
      return "Secrets(round=" + info.round() + ", <hidden>)";
    }
  }

  @Override
  public String toString() {
    return "SecAggClient(" + link + (round == null ? "" : ", round " + round.info.round()) + ")";
  }
}
