package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import crypten_lite.v1.EdgeOuterClass;
import crypten_lite.v1.EdgeOuterClass.AdvertiseRequest;
import crypten_lite.v1.EdgeOuterClass.IndexedShare;
import crypten_lite.v1.EdgeOuterClass.MaskedInputRequest;
import crypten_lite.v1.EdgeOuterClass.ShareKeysRequest;
import crypten_lite.v1.EdgeOuterClass.UnmaskRequest;
import java.math.BigInteger;
import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * SecAggClient: every refusal of the Python client (driven with hand-made states through a
 * scripted link), the masked vector checked from the neighbours' side, the long polls, and full
 * rounds against {@link FakeSecAggServer} (with a dropout, with a tampered share).
 */
class SecAggClientTest {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final long ROUND = 7;
  private static final long ME = 3;
  private static final QuantSpec QUANT = QuantSpec.of("int16", 1.0);
  private static final RoundInfo INFO =
      new RoundInfo("job-s", ROUND, RoundState.OPEN, 4, 32, QUANT, 1, 0, 3, null);
  private static final double[] X = {0.5, -0.25, 1.0, -1.0};

  /** A SecAggLink that answers state requests from a queue and records every request. */
  static final class ScriptedLink implements SecAggLink {
    final Deque<SecAggState> states = new ArrayDeque<>();
    final List<Object> requests = new ArrayList<>();
    final List<Object[]> polls = new ArrayList<>(); // {round, known, waitMillis}
    EdgeRefusalException refuseUploads;
    RoundInfo info = INFO;
    long received;

    @Override
    public RoundInfo roundInfo() {
      return info;
    }

    @Override
    public SecAggState secAggState(long round, SecAggStage known, long waitMillis) {
      polls.add(new Object[] {round, known, waitMillis});
      SecAggState state = states.size() > 1 ? states.poll() : states.peek();
      received += SecAggWire.stateReply(state).getSerializedSize();
      return state;
    }

    private int upload(com.google.protobuf.MessageLite request) throws EdgeRefusalException {
      if (refuseUploads != null) {
        throw refuseUploads;
      }
      requests.add(request);
      return request.getSerializedSize();
    }

    @Override
    public int advertise(AdvertiseRequest request) throws EdgeException {
      return upload(request);
    }

    @Override
    public int shareKeys(ShareKeysRequest request) throws EdgeException {
      return upload(request);
    }

    @Override
    public int submitMasked(MaskedInputRequest request) throws EdgeException {
      return upload(request);
    }

    @Override
    public int unmask(UnmaskRequest request) throws EdgeException {
      return upload(request);
    }

    @Override
    public long secAggReceivedBytes() {
      return received;
    }

    @Override
    public void close() {}

    <T> T last(Class<T> kind) {
      for (int i = requests.size() - 1; i >= 0; i--) {
        if (kind.isInstance(requests.get(i))) {
          return kind.cast(requests.get(i));
        }
      }
      throw new AssertionError("no " + kind.getSimpleName() + " sent");
    }
  }

  /** A neighbour whose keys the test knows. */
  static final class Peer {
    final long index;
    final SecAggCrypto.RoundKeys keys = SecAggCrypto.RoundKeys.generate(RANDOM);

    Peer(long index) {
      this.index = index;
    }

    NeighbourKey key() {
      return new NeighbourKey(index, keys.cipherPublic(), keys.maskPublic());
    }
  }

  private ScriptedLink link;
  private SecAggClient client;
  private List<Peer> peers;
  private byte[] ctx;

  @BeforeEach
  void setUp() {
    link = new ScriptedLink();
    client = new SecAggClient(link, RANDOM, 1);
    peers = new ArrayList<>();
    for (long v : new long[] {1, 2, 4, 5}) {
      peers.add(new Peer(v));
    }
    ctx = SecAggCrypto.roundContext(INFO.jobId(), ROUND);
  }

  private List<NeighbourKey> keys() {
    List<NeighbourKey> out = new ArrayList<>();
    for (Peer p : peers) {
      out.add(p.key());
    }
    return out;
  }

  private SecAggState shareState(long threshold, List<NeighbourKey> neighbours) {
    return SecAggState.builder(ROUND, SecAggStage.SHARE_KEYS)
        .index(ME)
        .threshold(threshold)
        .neighbours(neighbours)
        .build();
  }

  private AdvertiseRequest advertised() {
    return link.last(AdvertiseRequest.class);
  }

  /** A sealed pair of shares from peer {@code p} to this client. */
  private EncryptedShare sealFrom(Peer p, long receiver, byte[] plain) throws Exception {
    byte[] key =
        SecAggCrypto.shareKey(
            p.keys.cipherPrivate(), advertised().getCipherPublic().toByteArray(), ctx, p.index, ME);
    return new EncryptedShare(p.index, receiver, SecAggCrypto.seal(key, ctx, p.index, receiver, plain, RANDOM));
  }

  private static byte[] twoShares(long seed, long key) {
    return SecAggCrypto.concat(
        Shamir.encodeShare(BigInteger.valueOf(seed)), Shamir.encodeShare(BigInteger.valueOf(key)));
  }

  private List<EncryptedShare> inboxFromAll() throws Exception {
    List<EncryptedShare> inbox = new ArrayList<>();
    for (Peer p : peers) {
      inbox.add(sealFrom(p, ME, twoShares(100 + p.index, 200 + p.index)));
    }
    return inbox;
  }

  private SecAggState maskedState(long[] shared, List<EncryptedShare> inbox) {
    return SecAggState.builder(ROUND, SecAggStage.MASKED_INPUT)
        .index(ME)
        .threshold(3)
        .neighbours(keys())
        .shared(shared)
        .inbox(inbox)
        .build();
  }

  private static SecAggState unmaskState(long[] survivors, long[] dropped) {
    return SecAggState.builder(ROUND, SecAggStage.UNMASK)
        .index(ME)
        .threshold(3)
        .shared(1, 2, 4, 5)
        .survivors(survivors)
        .dropped(dropped)
        .build();
  }

  private void upToShareKeys() throws Exception {
    client.advertise(INFO);
    client.shareKeys(shareState(3, keys()));
  }

  private void upToMasked() throws Exception {
    upToShareKeys();
    client.maskedInput(maskedState(new long[] {1, 2, 4, 5}, inboxFromAll()), X);
  }

  private <T extends Throwable> T refusedWithNothingSent(Class<T> kind, ThrowingRunnable call) {
    int before = link.requests.size();
    T err = assertThrows(kind, call::run);
    assertEquals(before, link.requests.size(), "nothing may be sent");
    return err;
  }

  interface ThrowingRunnable {
    void run() throws Exception;
  }

  // -- advertise ------------------------------------------------------------------------------

  @Test
  void advertiseSendsTwoDistinctFreshKeys() throws Exception {
    int size = client.advertise(INFO);
    AdvertiseRequest request = advertised();
    assertEquals(ROUND, request.getRound());
    assertEquals(32, request.getCipherPublic().size());
    assertEquals(32, request.getMaskPublic().size());
    assertFalse(request.getCipherPublic().equals(request.getMaskPublic()));
    assertEquals(request.getSerializedSize(), size);
    client.advertise(INFO); // a new round draws new keys
    assertFalse(request.getMaskPublic().equals(advertised().getMaskPublic()));
  }

  @Test
  void advertiseRefusesAMultiServerJobAndAClosedRound() {
    RoundInfo shared = new RoundInfo("job-s", ROUND, RoundState.OPEN, 4, 32, QUANT, 2, 0, 3, null);
    IllegalArgumentException multi =
        refusedWithNothingSent(IllegalArgumentException.class, () -> client.advertise(shared));
    assertTrue(multi.getMessage().contains("shared among 2 servers"), multi.getMessage());
    SecAggRoundFailedException closed =
        refusedWithNothingSent(
            SecAggRoundFailedException.class, () -> client.advertise(INFO.withState(RoundState.CLOSED)));
    assertEquals("round 7 is not open for keys", closed.reason());
  }

  // -- share keys -----------------------------------------------------------------------------

  @Test
  void shareKeysSealsOneOpenablePairOfSharesPerNeighbour() throws Exception {
    upToShareKeys();
    ShareKeysRequest request = link.last(ShareKeysRequest.class);
    assertEquals(ROUND, request.getRound());
    assertEquals(32, request.getSeedCommitment().size());
    assertEquals(4, request.getSharesCount());
    for (int i = 0; i < peers.size(); i++) {
      Peer p = peers.get(i);
      EdgeOuterClass.EncryptedShare share = request.getShares(i);
      assertEquals(ME, share.getSender());
      assertEquals(p.index, share.getReceiver());
      assertEquals(SecAggCrypto.SEALED_SIZE, share.getSealed().size());
      byte[] key =
          SecAggCrypto.shareKey(p.keys.cipherPrivate(), advertised().getCipherPublic().toByteArray(), ctx, p.index, ME);
      byte[] plain = SecAggCrypto.open(key, ctx, ME, p.index, share.getSealed().toByteArray());
      assertEquals(2 * Shamir.SHARE_SIZE, plain.length);
    }
  }

  @Test
  void unsafeThresholdsAreRefused() throws Exception {
    client.advertise(INFO);
    // d = 4: t must satisfy 2 < t <= 4
    for (long t : new long[] {0, 1, 2, 5, 1L << 31}) {
      SecAggProtocolException err =
          refusedWithNothingSent(
              SecAggProtocolException.class, () -> client.shareKeys(shareState(t, keys())));
      assertTrue(err.getMessage().startsWith("threshold " + t + " with 4 neighbours is unsafe"), err.getMessage());
    }
    // d = 1: no threshold is safe (t >= 2 > d)
    List<NeighbourKey> one = keys().subList(0, 1);
    refusedWithNothingSent(SecAggProtocolException.class, () -> client.shareKeys(shareState(1, one)));
    refusedWithNothingSent(SecAggProtocolException.class, () -> client.shareKeys(shareState(2, one)));
    // d = 2: t = 2 is the only safe one
    client.shareKeys(shareState(2, keys().subList(0, 2)));
  }

  @Test
  void badNeighbourListsAreRefused() throws Exception {
    client.advertise(INFO);
    List<NeighbourKey> empty = new ArrayList<>();
    List<NeighbourKey> repeated = new ArrayList<>(keys());
    repeated.set(3, new NeighbourKey(1, peers.get(3).keys.cipherPublic(), peers.get(3).keys.maskPublic()));
    List<NeighbourKey> itself = new ArrayList<>(keys());
    itself.set(3, new NeighbourKey(ME, peers.get(3).keys.cipherPublic(), peers.get(3).keys.maskPublic()));
    for (List<NeighbourKey> bad : Arrays.asList(empty, repeated, itself)) {
      SecAggProtocolException err =
          refusedWithNothingSent(SecAggProtocolException.class, () -> client.shareKeys(shareState(3, bad)));
      assertEquals("the neighbour list is empty, repeats a client or names this one", err.getMessage());
    }
    List<NeighbourKey> sameMask = new ArrayList<>(keys());
    sameMask.set(3, new NeighbourKey(5, peers.get(3).keys.cipherPublic(), peers.get(0).keys.maskPublic()));
    List<NeighbourKey> crossed = new ArrayList<>(keys());
    crossed.set(3, new NeighbourKey(5, peers.get(0).keys.maskPublic(), peers.get(3).keys.maskPublic()));
    List<NeighbourKey> ownPair = new ArrayList<>(keys());
    ownPair.set(3, new NeighbourKey(5, peers.get(3).keys.maskPublic(), peers.get(3).keys.maskPublic()));
    for (List<NeighbourKey> bad : Arrays.asList(sameMask, crossed, ownPair)) {
      SecAggProtocolException err =
          refusedWithNothingSent(SecAggProtocolException.class, () -> client.shareKeys(shareState(3, bad)));
      assertEquals("two neighbours share a public key", err.getMessage());
    }
  }

  @Test
  void statesThatDoNotFitTheRoundAreRefused() throws Exception {
    // nothing advertised yet
    SecAggProtocolException none =
        refusedWithNothingSent(SecAggProtocolException.class, () -> client.shareKeys(shareState(3, keys())));
    assertEquals("no keys were advertised for round 7", none.getMessage());
    client.advertise(INFO);
    SecAggState otherRound =
        SecAggState.builder(ROUND + 1, SecAggStage.SHARE_KEYS).index(ME).threshold(3).neighbours(keys()).build();
    assertEquals(
        "no keys were advertised for round 8",
        refusedWithNothingSent(SecAggProtocolException.class, () -> client.shareKeys(otherRound)).getMessage());
    assertEquals(
        "round 7 is at stage share_keys, not masked_input",
        refusedWithNothingSent(
                SecAggProtocolException.class, () -> client.maskedInput(shareState(3, keys()), X))
            .getMessage());
    SecAggState noIndex = SecAggState.builder(ROUND, SecAggStage.SHARE_KEYS).threshold(3).neighbours(keys()).build();
    assertEquals(
        "this client is not part of round 7",
        refusedWithNothingSent(SecAggRoundFailedException.class, () -> client.shareKeys(noIndex)).reason());
    SecAggState failed =
        SecAggState.builder(ROUND, SecAggStage.FAILED).failure("only 2 client(s) advertised keys").build();
    assertEquals(
        "only 2 client(s) advertised keys",
        refusedWithNothingSent(SecAggRoundFailedException.class, () -> client.shareKeys(failed)).reason());
    SecAggState out =
        SecAggState.builder(ROUND, SecAggStage.SHARE_KEYS).index(ME).failure("this client is out of round 7").build();
    assertEquals(
        "this client is out of round 7",
        refusedWithNothingSent(SecAggRoundFailedException.class, () -> client.shareKeys(out)).reason());
    client.shareKeys(shareState(3, keys()));
    SecAggState moved =
        SecAggState.builder(ROUND, SecAggStage.MASKED_INPUT).index(4).threshold(3).neighbours(keys()).shared(1, 2, 4, 5).build();
    assertEquals(
        "this client is not part of round 7",
        refusedWithNothingSent(SecAggRoundFailedException.class, () -> client.maskedInput(moved, X)).reason());
  }

  // -- masked input ---------------------------------------------------------------------------

  @Test
  void theMaskedVectorIsTheEncodedUpdatePlusTheMasks() throws Exception {
    upToShareKeys();
    long[] shared = {1, 2, 5}; // neighbour 4 did not share keys: no mask with it
    List<EncryptedShare> inbox = inboxFromAll().subList(0, 2);
    inbox = new ArrayList<>(inbox);
    inbox.add(sealFrom(peers.get(3), ME, twoShares(1, 2)));
    int size = client.maskedInput(maskedState(shared, inbox), X);
    MaskedInputRequest request = link.last(MaskedInputRequest.class);
    assertEquals(request.getSerializedSize(), size);
    assertEquals(4, request.getNumElements());
    assertEquals(32, request.getRingBits());
    assertEquals(0, request.getComplaintsCount());
    long[] y = RingWords.fromBytes(request.getVector().toByteArray(), 32);

    // the self-mask seed, rebuilt from the shares three neighbours opened, matches the commitment
    ShareKeysRequest sharing = link.last(ShareKeysRequest.class);
    long[] xs = new long[3];
    BigInteger[] ys = new BigInteger[3];
    for (int i = 0; i < 3; i++) {
      Peer p = peers.get(i);
      byte[] key =
          SecAggCrypto.shareKey(p.keys.cipherPrivate(), advertised().getCipherPublic().toByteArray(), ctx, p.index, ME);
      byte[] plain = SecAggCrypto.open(key, ctx, ME, p.index, sharing.getShares(i).getSealed().toByteArray());
      xs[i] = p.index;
      ys[i] = Shamir.decodeShare(plain, 0, Shamir.SHARE_SIZE);
    }
    byte[] seed = Shamir.reconstruct(xs, ys);
    assertArrayEquals(sharing.getSeedCommitment().toByteArray(), SecAggCrypto.commitSeed(ctx, ME, seed));

    long[] expected = UpdateEncoder.encode(X, QUANT, 32);
    long[] self = SeedExpander.expand(seed, 4, 32);
    for (int i = 0; i < 4; i++) {
      expected[i] += self[i];
    }
    for (long v : shared) {
      Peer p = peers.get(v < ME ? (int) v - 1 : (int) v - 2);
      byte[] pair = SecAggCrypto.pairSeed(p.keys.maskPrivate(), advertised().getMaskPublic().toByteArray(), ctx, v, ME);
      long[] mask = SeedExpander.expand(pair, 4, 32);
      for (int i = 0; i < 4; i++) {
        expected[i] += SecAggCrypto.maskSign(ME, v) * mask[i]; // + for v > 3, - for v < 3
      }
    }
    for (int i = 0; i < 4; i++) {
      expected[i] = RingWords.reduce(expected[i], 32);
    }
    assertEquals(TestVectors.unsigned(expected), TestVectors.unsigned(y));
  }

  @Test
  void aSharingSetOutsideTheNeighboursIsRefused() throws Exception {
    upToShareKeys();
    List<EncryptedShare> inbox = inboxFromAll();
    SecAggProtocolException stranger =
        refusedWithNothingSent(
            SecAggProtocolException.class,
            () -> client.maskedInput(maskedState(new long[] {1, 2, 6}, inbox.subList(0, 2)), X));
    assertEquals("the server lists a sharing neighbour this client never had", stranger.getMessage());
    refusedWithNothingSent(
        SecAggProtocolException.class,
        () -> client.maskedInput(maskedState(new long[] {1, 2, 2, 4}, inbox.subList(0, 3)), X));
  }

  @Test
  void fewerSharingNeighboursThanTheThresholdFailTheRound() throws Exception {
    upToShareKeys();
    List<EncryptedShare> inbox = inboxFromAll().subList(0, 2);
    SecAggRoundFailedException err =
        refusedWithNothingSent(
            SecAggRoundFailedException.class, () -> client.maskedInput(maskedState(new long[] {1, 2}, inbox), X));
    assertEquals("only 2 neighbours shared keys, fewer than the threshold 3", err.reason());
  }

  @Test
  void unexpectedRelayedSharesAreRefused() throws Exception {
    upToShareKeys();
    List<EncryptedShare> good = inboxFromAll();
    long[] three = {1, 2, 4};
    // from a neighbour that did not share keys (5 is not in `three`)
    List<EncryptedShare> fromOutside = new ArrayList<>(good.subList(0, 2));
    fromOutside.add(good.get(3));
    // addressed to another client
    List<EncryptedShare> misaddressed = new ArrayList<>(good.subList(0, 2));
    misaddressed.add(sealFrom(peers.get(2), 5, twoShares(1, 1)));
    // the same sender twice
    List<EncryptedShare> twice = new ArrayList<>(good.subList(0, 3));
    twice.add(good.get(0));
    for (List<EncryptedShare> inbox : Arrays.asList(fromOutside, misaddressed, twice)) {
      SecAggProtocolException err =
          refusedWithNothingSent(
              SecAggProtocolException.class, () -> client.maskedInput(maskedState(three, inbox), X));
      assertTrue(err.getMessage().startsWith("the server relayed an unexpected share from "), err.getMessage());
    }
  }

  @Test
  void aShareFailingAuthenticationBecomesAComplaint() throws Exception {
    upToShareKeys();
    List<EncryptedShare> inbox = inboxFromAll();
    byte[] tampered = inbox.get(1).sealed();
    tampered[40] ^= 1;
    inbox.set(1, new EncryptedShare(2, ME, tampered));
    // sealed for the right pair but bound to another round: fails too
    Peer p5 = peers.get(3);
    byte[] key =
        SecAggCrypto.shareKey(p5.keys.cipherPrivate(), advertised().getCipherPublic().toByteArray(), ctx, 5, ME);
    inbox.set(
        3,
        new EncryptedShare(
            5, ME, SecAggCrypto.seal(key, SecAggCrypto.roundContext("job-s", ROUND + 1), 5, ME, twoShares(1, 1), RANDOM)));
    client.maskedInput(maskedState(new long[] {1, 2, 4, 5}, inbox), X);
    MaskedInputRequest request = link.last(MaskedInputRequest.class);
    assertEquals(Arrays.asList(2, 5), request.getComplaintsList());
    // at the unmasking, no share of a complained-about neighbour is revealed
    client.unmask(unmaskState(new long[] {1, 2}, new long[] {4, 5}));
    UnmaskRequest unmask = link.last(UnmaskRequest.class);
    assertEquals(1, unmask.getSeedSharesCount());
    assertEquals(1, unmask.getSeedShares(0).getIndex());
    assertEquals(1, unmask.getKeySharesCount());
    assertEquals(4, unmask.getKeyShares(0).getIndex());
    assertArrayEquals(new long[] {2, 5}, client.report(SecAggStage.UNMASK).complaints());
  }

  @Test
  void aWrongLengthUpdateIsAnEncodingError() throws Exception {
    upToShareKeys();
    List<EncryptedShare> inbox = inboxFromAll();
    EncodingException err =
        refusedWithNothingSent(
            EncodingException.class,
            () -> client.maskedInput(maskedState(new long[] {1, 2, 4, 5}, inbox), new double[] {1, 2, 3}));
    assertEquals("x has 3 values; round 7 expects 4", err.getMessage());
    refusedWithNothingSent(
        EncodingException.class,
        () -> client.maskedInput(maskedState(new long[] {1, 2, 4, 5}, inbox), new double[] {0, Double.NaN, 0, 0}));
  }

  // -- unmask ---------------------------------------------------------------------------------

  @Test
  void unmaskRevealsSeedSharesOfSurvivorsAndKeySharesOfTheDropped() throws Exception {
    upToMasked();
    client.unmask(unmaskState(new long[] {5, 1, 4}, new long[] {2}));
    UnmaskRequest request = link.last(UnmaskRequest.class);
    assertEquals(ROUND, request.getRound());
    List<Long> seedIndices = new ArrayList<>();
    for (IndexedShare s : request.getSeedSharesList()) {
      seedIndices.add(Integer.toUnsignedLong(s.getIndex()));
      assertEquals(BigInteger.valueOf(100 + s.getIndex()), Shamir.decodeShare(s.getShare().toByteArray()));
    }
    assertEquals(Arrays.asList(1L, 4L, 5L), seedIndices);
    assertEquals(1, request.getKeySharesCount());
    assertEquals(2, request.getKeyShares(0).getIndex());
    assertEquals(BigInteger.valueOf(202), Shamir.decodeShare(request.getKeyShares(0).getShare().toByteArray()));
  }

  @Test
  void aClientBothSurvivorAndDroppedIsRefused() throws Exception {
    upToMasked();
    SecAggProtocolException err =
        refusedWithNothingSent(
            SecAggProtocolException.class, () -> client.unmask(unmaskState(new long[] {1, 2}, new long[] {2, 4})));
    assertEquals(
        "the server names client(s) [2] both survivor and dropped: refusing to reveal both shares",
        err.getMessage());
  }

  @Test
  void sharesOfClientsItDidNotMaskWithAreRefused() throws Exception {
    upToShareKeys();
    client.maskedInput(maskedState(new long[] {1, 2, 4}, inboxFromAll().subList(0, 3)), X);
    SecAggProtocolException err =
        refusedWithNothingSent(
            SecAggProtocolException.class, () -> client.unmask(unmaskState(new long[] {1, 2}, new long[] {5})));
    assertEquals("the server asks for shares of clients this client did not mask with", err.getMessage());
    refusedWithNothingSent(
        SecAggProtocolException.class, () -> client.unmask(unmaskState(new long[] {1, 2, 6}, new long[0])));
  }

  @Test
  void aRepeatedClientAndASecondUnmaskingAreRefused() throws Exception {
    upToMasked();
    SecAggProtocolException repeat =
        refusedWithNothingSent(
            SecAggProtocolException.class, () -> client.unmask(unmaskState(new long[] {1, 1, 2}, new long[] {4})));
    assertEquals("the unmasking request repeats a client", repeat.getMessage());
    refusedWithNothingSent(
        SecAggProtocolException.class, () -> client.unmask(unmaskState(new long[] {1}, new long[] {4, 4})));
    client.unmask(unmaskState(new long[] {1, 2, 4, 5}, new long[0]));
    SecAggProtocolException again =
        refusedWithNothingSent(
            SecAggProtocolException.class, () -> client.unmask(unmaskState(new long[0], new long[] {1, 2, 4, 5})));
    assertEquals("already answered the unmasking of round 7", again.getMessage());
  }

  // -- refusals of uploads --------------------------------------------------------------------

  @Test
  void aStaleRefusalFailsTheRoundWithTheServersReason() throws Exception {
    client.advertise(INFO);
    link.refuseUploads =
        new EdgeRefusalException(Refusal.STALE, "round 7 is at stage masked_input; this answer is for round 7, stage share_keys");
    SecAggRoundFailedException err =
        assertThrows(SecAggRoundFailedException.class, () -> client.shareKeys(shareState(3, keys())));
    assertEquals(
        "round 7 is at stage masked_input; this answer is for round 7, stage share_keys", err.reason());
    link.refuseUploads = new EdgeRefusalException(Refusal.INVALID, "no share for neighbour(s) [5]");
    EdgeRefusalException invalid =
        assertThrows(EdgeRefusalException.class, () -> client.shareKeys(shareState(3, keys())));
    assertEquals(Refusal.INVALID, invalid.refusal());
  }

  // -- waiting for stages ---------------------------------------------------------------------

  @Test
  void waitForStageLongPollsFromThePreviousStage() throws Exception {
    link.states.add(SecAggState.builder(ROUND, SecAggStage.ADVERTISE).build());
    link.states.add(SecAggState.builder(ROUND, SecAggStage.SHARE_KEYS).index(ME).build());
    SecAggState state = client.waitForStage(ROUND, SecAggStage.SHARE_KEYS, 60_000);
    assertEquals(SecAggStage.SHARE_KEYS, state.stage());
    assertEquals(2, link.polls.size());
    for (Object[] poll : link.polls) {
      assertEquals(ROUND, poll[0]);
      assertEquals(SecAggStage.ADVERTISE, poll[1]);
      assertEquals(SecAggClient.LONG_POLL_MILLIS, poll[2]);
    }
    link.polls.clear();
    link.states.clear();
    link.states.add(SecAggState.builder(ROUND, SecAggStage.DONE).index(ME).build());
    client.waitForStage(ROUND, SecAggStage.DONE, 3_000);
    assertEquals(SecAggStage.UNMASK, link.polls.get(0)[1]);
    assertTrue((Long) link.polls.get(0)[2] <= 3_000);
  }

  @Test
  void waitForStageFailsOnFailureOrWhenTheRoundMovedOn() {
    link.states.add(SecAggState.builder(ROUND, SecAggStage.FAILED).failure("client 2 kept 1 of its 3 neighbours").build());
    assertEquals(
        "client 2 kept 1 of its 3 neighbours",
        assertThrows(SecAggRoundFailedException.class, () -> client.waitForStage(ROUND, SecAggStage.UNMASK, 1000)).reason());
    link.states.clear();
    link.states.add(SecAggState.builder(ROUND, SecAggStage.FAILED).build());
    assertEquals(
        "round 7 failed",
        assertThrows(SecAggRoundFailedException.class, () -> client.waitForStage(ROUND, SecAggStage.DONE, 1000)).reason());
    link.states.clear();
    link.states.add(SecAggState.builder(ROUND, SecAggStage.UNMASK).index(ME).failure("this client is out of round 7").build());
    assertEquals(
        "round 7 moved past share_keys without this client: this client is out of round 7",
        assertThrows(SecAggRoundFailedException.class, () -> client.waitForStage(ROUND, SecAggStage.SHARE_KEYS, 1000)).reason());
    link.states.clear();
    link.states.add(SecAggState.builder(ROUND + 1, SecAggStage.SHARE_KEYS).build());
    assertThrows(SecAggProtocolException.class, () -> client.waitForStage(ROUND, SecAggStage.SHARE_KEYS, 1000));
  }

  @Test
  void waitForStageTimesOutWithBackoffWhenTheServerDoesNotWait() {
    link.states.add(SecAggState.builder(ROUND, SecAggStage.ADVERTISE).build());
    long start = System.nanoTime();
    EdgeTimeoutException err =
        assertThrows(EdgeTimeoutException.class, () -> client.waitForStage(ROUND, SecAggStage.SHARE_KEYS, 300));
    long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    assertEquals("round 7 did not reach share_keys within 0.3s", err.getMessage());
    assertTrue(millis >= 290 && millis < 2000, "took " + millis);
    assertTrue(link.polls.size() >= 3 && link.polls.size() < 25, "polls: " + link.polls.size());
  }

  @Test
  void secretsStayHidden() throws Exception {
    upToMasked();
    assertFalse(client.toString().contains("["), client.toString());
    String report = client.report(SecAggStage.MASKED_INPUT).toString();
    assertTrue(report.startsWith("SecAggReport(round=7, index=3, masked_input, neighbours=4"), report);
    assertEquals(
        "SecAggState(round=7, unmask, index=3, t=3, neighbours=0, shared=4, inbox=0, survivors=1, dropped=0)",
        unmaskState(new long[] {1}, new long[0]).toString());
  }

  // -- full rounds against the fake server ----------------------------------------------------

  private static double[] update(int seed, int m) {
    java.util.Random rng = new java.util.Random(seed);
    double[] x = new double[m];
    for (int i = 0; i < m; i++) {
      x[i] = rng.nextDouble() * 2.4 - 1.2; // a little beyond the clip
    }
    return x;
  }

  private static long[] ringSum(FakeSecAggServer server, List<double[]> updates) {
    long[] total = new long[server.numElements];
    for (double[] x : updates) {
      long[] ring = UpdateEncoder.encode(x, server.quant, server.ringBits);
      for (int i = 0; i < total.length; i++) {
        total[i] = RingWords.reduce(total[i] + ring[i], server.ringBits);
      }
    }
    return total;
  }

  private static void waitUntil(java.util.function.BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!condition.getAsBoolean()) {
      assertTrue(System.nanoTime() < deadline, "timed out");
      Thread.sleep(5);
    }
  }

  @Test
  void fourClientsRunARoundWithOneDroppingAfterSharingKeys() throws Exception {
    FakeSecAggServer server = new FakeSecAggServer("job-r", 1, 40, 4, 2);
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<SecAggReport>> runs = new ArrayList<>();
      List<double[]> updates = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        double[] x = update(i, 40);
        updates.add(x);
        SecAggClient c = new SecAggClient(server.link("client-" + i), RANDOM, 5);
        runs.add(pool.submit(() -> c.runRound(x, c.waitForRound(0, 10_000), 20_000)));
      }
      SecAggClient dropper = new SecAggClient(server.link("client-3"), RANDOM, 5);
      Future<Long> dropped =
          pool.submit(
              () -> {
                RoundInfo info = dropper.waitForRound(0, 10_000);
                dropper.advertise(info);
                dropper.shareKeys(dropper.waitForStage(1, SecAggStage.SHARE_KEYS, 20_000));
                return info.round();
              });
      assertEquals(1L, dropped.get(30, TimeUnit.SECONDS));
      // the server closes the masked-input stage once the three others uploaded
      waitUntil(
          () -> server.stage() == SecAggStage.MASKED_INPUT
              && server.member("client-0").masked && server.member("client-1").masked
              && server.member("client-2").masked);
      server.close();
      for (Future<SecAggReport> run : runs) {
        SecAggReport report = run.get(30, TimeUnit.SECONDS);
        assertEquals(1, report.round());
        assertEquals(SecAggStage.DONE, report.stage());
        assertEquals(3, report.neighbours());
        assertEquals(0, report.complaints().length);
        assertTrue(report.maskedBytes() >= 40 * 4, "masked: " + report.maskedBytes());
        assertTrue(report.uploadBytes() > report.maskedBytes() + 3 * SecAggCrypto.SEALED_SIZE);
        assertTrue(report.downloadBytes() > 0);
        assertEquals(160, report.plaintextBytes());
        assertTrue(report.polls() >= 4, "polls: " + report.polls());
        assertTrue(report.cpuSeconds() > 0);
      }
      assertEquals(SecAggStage.DONE, server.stage());
      // client-3's mask key was rebuilt from the others' shares: the masks cancel exactly
      assertEquals(TestVectors.unsigned(ringSum(server, updates)), TestVectors.unsigned(server.aggregate()));
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aTamperedShareIsComplainedAboutAndTheRoundStillCompletes() throws Exception {
    FakeSecAggServer server = new FakeSecAggServer("job-t", 2, 8, 4, 2);
    List<SecAggClient> clients = new ArrayList<>();
    List<double[]> updates = new ArrayList<>();
    Map<String, SecAggClient> byId = new TreeMap<>();
    for (int i = 0; i < 4; i++) {
      SecAggClient c = new SecAggClient(server.link("client-" + i), RANDOM, 5);
      clients.add(c);
      byId.put("client-" + i, c);
      updates.add(update(10 + i, 8));
    }
    RoundInfo info = server.roundInfo();
    for (SecAggClient c : clients) {
      c.advertise(info);
    }
    assertEquals(SecAggStage.SHARE_KEYS, server.stage());
    for (SecAggClient c : clients) {
      c.shareKeys(c.waitForStage(2, SecAggStage.SHARE_KEYS, 1000));
    }
    assertEquals(SecAggStage.MASKED_INPUT, server.stage());
    // the server (or the network) alters the share client 1 sent client 3
    byte[] sealed = server.member("client-0").outgoing.get(3L);
    sealed[20] ^= 0x40;
    for (int i = 0; i < 4; i++) {
      SecAggClient c = clients.get(i);
      c.maskedInput(c.waitForStage(2, SecAggStage.MASKED_INPUT, 1000), updates.get(i));
    }
    assertArrayEquals(new long[] {1}, server.member("client-2").complaints);
    for (SecAggClient c : clients) {
      c.unmask(c.waitForStage(2, SecAggStage.UNMASK, 1000));
    }
    assertEquals(SecAggStage.DONE, server.stage());
    assertArrayEquals(new long[] {1}, byId.get("client-2").report(SecAggStage.DONE).complaints());
    assertEquals(TestVectors.unsigned(ringSum(server, updates)), TestVectors.unsigned(server.aggregate()));
  }
}
