package io.cryptenlite.edge;

import crypten_lite.v1.EdgeOuterClass;
import crypten_lite.v1.EdgeOuterClass.AdvertiseRequest;
import crypten_lite.v1.EdgeOuterClass.IndexedShare;
import crypten_lite.v1.EdgeOuterClass.MaskedInputRequest;
import crypten_lite.v1.EdgeOuterClass.SecAggAck;
import crypten_lite.v1.EdgeOuterClass.ShareKeysRequest;
import crypten_lite.v1.EdgeOuterClass.UnmaskRequest;
import io.grpc.StatusRuntimeException;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * One SecAgg round on an in-memory server for tests, following {@code
 * crypten_lite.fl.secagg.state.SecAggRound}: all-pairs neighbours, stages closed by hand ({@link
 * #close()}) or automatically once every client still in answered, long polls, the views each
 * client gets, and the unmasking ({@link #aggregate()}: the ring sum of the survivors' encoded
 * updates, or an AssertionError).
 */
final class FakeSecAggServer {
  final String jobId;
  final long round;
  final int numElements;
  final int ringBits;
  final QuantSpec quant;
  final int expected;
  final int threshold;
  volatile boolean autoClose = true;

  private SecAggStage stage = SecAggStage.ADVERTISE;
  private String failure = "";
  private final Map<String, Member> byId = new TreeMap<>();
  private final Map<Long, Member> byIndex = new TreeMap<>();
  private final long[] sum;

  static final class Member {
    final String id;
    final byte[] cipherPublic;
    final byte[] maskPublic;
    long index;
    long[] neighbours = new long[0];
    byte[] commitment;
    final Map<Long, byte[]> outgoing = new HashMap<>();
    long[] shared = new long[0];
    boolean masked;
    long[] complaints = new long[0];
    final Map<Long, BigInteger> seedShares = new HashMap<>();
    final Map<Long, BigInteger> keyShares = new HashMap<>();
    boolean unmasked;

    Member(String id, byte[] cipherPublic, byte[] maskPublic) {
      this.id = id;
      this.cipherPublic = cipherPublic;
      this.maskPublic = maskPublic;
    }
  }

  FakeSecAggServer(String jobId, long round, int numElements, int expected, int threshold) {
    this.jobId = jobId;
    this.round = round;
    this.numElements = numElements;
    this.ringBits = 32;
    this.quant = QuantSpec.of("int16", 1.0);
    this.expected = expected;
    this.threshold = threshold;
    this.sum = new long[numElements];
  }

  synchronized RoundInfo roundInfo() {
    RoundState state = stage == SecAggStage.ADVERTISE ? RoundState.OPEN : RoundState.CLOSED;
    return new RoundInfo(jobId, round, state, numElements, ringBits, quant, 1, 0, 3, null);
  }

  synchronized SecAggStage stage() {
    return stage;
  }

  synchronized Member member(String id) {
    return byId.get(id);
  }

  // -- uploads --------------------------------------------------------------------------------

  private void expect(long number, SecAggStage wanted) throws EdgeRefusalException {
    if (number != round || stage != wanted) {
      throw new EdgeRefusalException(
          Refusal.STALE,
          "round " + round + " is at stage " + stage.wireName() + "; this answer is for round "
              + number + ", stage " + wanted.wireName());
    }
  }

  private Member memberOf(String id, long number, SecAggStage wanted) throws EdgeRefusalException {
    expect(number, wanted);
    Member who = byId.get(id);
    if (who == null || who.index == 0) {
      throw new EdgeRefusalException(Refusal.STALE, "this client is not part of round " + round);
    }
    return who;
  }

  synchronized void advertise(String id, AdvertiseRequest request) throws EdgeRefusalException {
    expect(request.getRound(), SecAggStage.ADVERTISE);
    if (byId.containsKey(id)) {
      throw new EdgeRefusalException(Refusal.DUPLICATE, "already advertised keys for round " + round);
    }
    byId.put(
        id,
        new Member(id, request.getCipherPublic().toByteArray(), request.getMaskPublic().toByteArray()));
    if (autoClose && byId.size() == expected) {
      closeLocked();
    }
  }

  synchronized void shareKeys(String id, ShareKeysRequest request) throws EdgeRefusalException {
    Member who = memberOf(id, request.getRound(), SecAggStage.SHARE_KEYS);
    if (who.commitment != null) {
      throw new EdgeRefusalException(Refusal.DUPLICATE, "already shared keys for round " + round);
    }
    for (EdgeOuterClass.EncryptedShare s : request.getSharesList()) {
      if (Integer.toUnsignedLong(s.getSender()) != who.index) {
        throw new EdgeRefusalException(Refusal.INVALID, "a share names another sender");
      }
      who.outgoing.put(Integer.toUnsignedLong(s.getReceiver()), s.getSealed().toByteArray());
    }
    if (who.outgoing.size() != who.neighbours.length) {
      throw new EdgeRefusalException(Refusal.INVALID, "one share per neighbour is needed");
    }
    who.commitment = request.getSeedCommitment().toByteArray();
    if (autoClose && count(SecAggStage.SHARE_KEYS) == byIndex.size()) {
      closeLocked();
    }
  }

  synchronized void submitMasked(String id, MaskedInputRequest request) throws EdgeRefusalException {
    Member who = memberOf(id, request.getRound(), SecAggStage.MASKED_INPUT);
    if (who.commitment == null) {
      throw new EdgeRefusalException(Refusal.STALE, "this client's keys were not shared");
    }
    if (who.masked) {
      throw new EdgeRefusalException(Refusal.DUPLICATE, "already sent a masked input");
    }
    if (request.getNumElements() != numElements || request.getRingBits() != ringBits) {
      throw new EdgeRefusalException(Refusal.INVALID, "wrong length or ring");
    }
    long[] y = RingWords.fromBytes(request.getVector().toByteArray(), ringBits);
    for (int i = 0; i < numElements; i++) {
      sum[i] = RingWords.reduce(sum[i] + y[i], ringBits);
    }
    who.complaints = request.getComplaintsList().stream().mapToLong(Integer::toUnsignedLong).toArray();
    who.masked = true;
    if (autoClose && count(SecAggStage.MASKED_INPUT) == count(SecAggStage.SHARE_KEYS)) {
      closeLocked();
    }
  }

  synchronized void unmask(String id, UnmaskRequest request) throws EdgeRefusalException {
    Member who = memberOf(id, request.getRound(), SecAggStage.UNMASK);
    if (!who.masked) {
      throw new EdgeRefusalException(Refusal.STALE, "this client sent no masked input");
    }
    if (who.unmasked) {
      throw new EdgeRefusalException(Refusal.DUPLICATE, "already answered the unmasking");
    }
    for (IndexedShare s : request.getSeedSharesList()) {
      Member v = byIndex.get(Integer.toUnsignedLong(s.getIndex()));
      if (v == null || !v.masked) {
        throw new EdgeRefusalException(Refusal.INVALID, "a self-mask share the server did not ask for");
      }
      who.seedShares.put(v.index, Shamir.decodeShare(s.getShare().toByteArray()));
    }
    for (IndexedShare s : request.getKeySharesList()) {
      Member v = byIndex.get(Integer.toUnsignedLong(s.getIndex()));
      if (v == null || v.masked) {
        throw new EdgeRefusalException(Refusal.INVALID, "a mask-key share the server did not ask for");
      }
      who.keyShares.put(v.index, Shamir.decodeShare(s.getShare().toByteArray()));
    }
    who.unmasked = true;
    if (autoClose && count(SecAggStage.UNMASK) == count(SecAggStage.MASKED_INPUT)) {
      closeLocked();
    }
  }

  private int count(SecAggStage answered) {
    int n = 0;
    for (Member m : byIndex.values()) {
      boolean yes =
          answered == SecAggStage.SHARE_KEYS ? m.commitment != null
              : answered == SecAggStage.MASKED_INPUT ? m.masked
              : m.unmasked;
      n += yes ? 1 : 0;
    }
    return n;
  }

  // -- stages ---------------------------------------------------------------------------------

  synchronized void close() {
    closeLocked();
  }

  synchronized void fail(String reason) {
    stage = SecAggStage.FAILED;
    failure = reason;
    notifyAll();
  }

  private void closeLocked() {
    switch (stage) {
      case ADVERTISE:
        long next = 1;
        for (Member m : byId.values()) { // indices by client id
          m.index = next++;
          byIndex.put(m.index, m);
        }
        for (Member m : byIndex.values()) {
          m.neighbours = byIndex.keySet().stream().mapToLong(Long::longValue).filter(v -> v != m.index).toArray();
        }
        stage = SecAggStage.SHARE_KEYS;
        break;
      case SHARE_KEYS:
        for (Member m : byIndex.values()) {
          if (m.commitment != null) {
            m.shared = Arrays.stream(m.neighbours).filter(v -> byIndex.get(v).commitment != null).toArray();
          }
        }
        stage = SecAggStage.MASKED_INPUT;
        break;
      case MASKED_INPUT:
        stage = SecAggStage.UNMASK;
        break;
      case UNMASK:
        stage = SecAggStage.DONE;
        break;
      default:
        break;
    }
    notifyAll();
  }

  // -- views ----------------------------------------------------------------------------------

  synchronized SecAggState state(String id, long number, SecAggStage known, long waitMillis)
      throws EdgeRefusalException {
    if (number != round) {
      throw new EdgeRefusalException(Refusal.STALE, "round " + number + " is not known");
    }
    long deadline = System.currentTimeMillis() + waitMillis;
    while (known != null && stage == known && System.currentTimeMillis() < deadline) {
      try {
        wait(Math.max(1, deadline - System.currentTimeMillis()));
      } catch (InterruptedException err) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    Member who = byId.get(id);
    SecAggState.Builder base = SecAggState.builder(round, stage).failure(failure);
    if (who == null || who.index == 0 || stage == SecAggStage.ADVERTISE) {
      return base.build();
    }
    base.index(who.index);
    if (stage != SecAggStage.SHARE_KEYS && who.commitment == null) {
      return base.failure(failure.isEmpty() ? "this client is out of round " + round : failure).build();
    }
    List<NeighbourKey> neighbours = new ArrayList<>();
    for (long v : who.neighbours) {
      Member m = byIndex.get(v);
      neighbours.add(new NeighbourKey(v, m.cipherPublic, m.maskPublic));
    }
    base.threshold(threshold).neighbours(neighbours);
    if (stage == SecAggStage.SHARE_KEYS || stage == SecAggStage.FAILED) {
      return base.build();
    }
    List<EncryptedShare> inbox = new ArrayList<>();
    for (long v : who.shared) {
      inbox.add(new EncryptedShare(v, who.index, byIndex.get(v).outgoing.get(who.index)));
    }
    base.shared(who.shared).inbox(inbox);
    if (stage == SecAggStage.UNMASK || stage == SecAggStage.DONE) {
      base.survivors(Arrays.stream(who.shared).filter(v -> byIndex.get(v).masked).toArray());
      base.dropped(Arrays.stream(who.shared).filter(v -> !byIndex.get(v).masked).toArray());
    }
    return base.build();
  }

  // -- the aggregate --------------------------------------------------------------------------

  /** The unmasked ring sum of the survivors' encoded updates (checks commitments too). */
  synchronized long[] aggregate() throws SecAggProtocolException {
    byte[] ctx = SecAggCrypto.roundContext(jobId, round);
    long[] total = sum.clone();
    for (Member u : byIndex.values()) {
      if (!u.masked) {
        continue;
      }
      byte[] seed = rebuild(u, true);
      if (!Arrays.equals(u.commitment, SecAggCrypto.commitSeed(ctx, u.index, seed))) {
        throw new AssertionError("client " + u.index + "'s self-mask seed does not match its commitment");
      }
      long[] mask = SeedExpander.expand(seed, numElements, ringBits);
      for (int i = 0; i < numElements; i++) {
        total[i] = RingWords.reduce(total[i] - mask[i], ringBits);
      }
    }
    for (Member v : byIndex.values()) {
      if (v.masked || v.commitment == null) {
        continue; // a survivor, or never in U2
      }
      byte[] key = rebuild(v, false);
      for (long ui : v.shared) {
        Member u = byIndex.get(ui);
        if (!u.masked) {
          continue;
        }
        byte[] pair = SecAggCrypto.pairSeed(key, u.maskPublic, ctx, v.index, u.index);
        long[] mask = SeedExpander.expand(pair, numElements, ringBits);
        int sign = SecAggCrypto.maskSign(u.index, v.index); // u added sign * PRG(s_uv)
        for (int i = 0; i < numElements; i++) {
          total[i] = RingWords.reduce(total[i] - sign * mask[i], ringBits);
        }
      }
    }
    return total;
  }

  private byte[] rebuild(Member v, boolean seed) {
    List<Long> xs = new ArrayList<>();
    List<BigInteger> ys = new ArrayList<>();
    for (long ui : v.shared) {
      Member u = byIndex.get(ui);
      BigInteger share = u.unmasked ? (seed ? u.seedShares : u.keyShares).get(v.index) : null;
      if (share != null && xs.size() < threshold) {
        xs.add(ui);
        ys.add(share);
      }
    }
    if (xs.size() < threshold) {
      throw new AssertionError("too few shares to rebuild client " + v.index);
    }
    return Shamir.reconstruct(xs.stream().mapToLong(Long::longValue).toArray(), ys.toArray(new BigInteger[0]));
  }

  // -- links ----------------------------------------------------------------------------------

  /** A direct link for client {@code id} (counts the state replies' serialized size). */
  SecAggLink link(String id) {
    FakeSecAggServer server = this;
    return new SecAggLink() {
      private long received;

      @Override
      public RoundInfo roundInfo() {
        return server.roundInfo();
      }

      @Override
      public SecAggState secAggState(long number, SecAggStage known, long waitMillis)
          throws EdgeException {
        SecAggState state = server.state(id, number, known, waitMillis);
        received += SecAggWire.stateReply(state).getSerializedSize();
        return state;
      }

      @Override
      public int advertise(AdvertiseRequest request) throws EdgeException {
        server.advertise(id, request);
        return request.getSerializedSize();
      }

      @Override
      public int shareKeys(ShareKeysRequest request) throws EdgeException {
        server.shareKeys(id, request);
        return request.getSerializedSize();
      }

      @Override
      public int submitMasked(MaskedInputRequest request) throws EdgeException {
        server.submitMasked(id, request);
        return request.getSerializedSize();
      }

      @Override
      public int unmask(UnmaskRequest request) throws EdgeException {
        server.unmask(id, request);
        return request.getSerializedSize();
      }

      @Override
      public long secAggReceivedBytes() {
        return received;
      }

      @Override
      public void close() {}
    };
  }

  interface Call {
    void run() throws EdgeRefusalException;
  }

  private static SecAggAck ack(Call call) {
    try {
      call.run();
    } catch (EdgeRefusalException err) {
      throw toStatus(err);
    }
    return SecAggAck.getDefaultInstance();
  }

  private static StatusRuntimeException toStatus(EdgeRefusalException err) {
    return io.grpc.Status.fromCode(err.refusal().statusCode()).withDescription(err.detail()).asRuntimeException();
  }

  /** Serves client {@code id}'s gRPC calls on {@code fake} (one client per fake service). */
  void serve(FakeEdge fake, String id) {
    fake.roundInfo = (request, call) -> {
      RoundInfo info = roundInfo();
      return FakeEdge.round(info.round(), info.state().wireName(), 0, 1)
          .setJobId(jobId)
          .setNumElements(numElements)
          .setModel(com.google.protobuf.ByteString.EMPTY)
          .build();
    };
    fake.secAggState = (request, call) -> {
      try {
        return SecAggWire.stateReply(
            state(id, request.getRound(), SecAggStage.fromWire(request.getKnownStage()), request.getWaitMs()));
      } catch (EdgeRefusalException err) {
        throw toStatus(err);
      }
    };
    fake.advertise = (request, call) -> ack(() -> advertise(id, request));
    fake.shareKeys = (request, call) -> ack(() -> shareKeys(id, request));
    fake.submitMasked = (request, call) -> ack(() -> submitMasked(id, request));
    fake.unmask = (request, call) -> ack(() -> unmask(id, request));
  }
}
