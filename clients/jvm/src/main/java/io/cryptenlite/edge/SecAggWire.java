package io.cryptenlite.edge;

import com.google.protobuf.ByteString;
import crypten_lite.v1.EdgeOuterClass;
import crypten_lite.v1.EdgeOuterClass.AdvertiseRequest;
import crypten_lite.v1.EdgeOuterClass.IndexedShare;
import crypten_lite.v1.EdgeOuterClass.MaskedInputRequest;
import crypten_lite.v1.EdgeOuterClass.SecAggStateReply;
import crypten_lite.v1.EdgeOuterClass.SecAggStateRequest;
import crypten_lite.v1.EdgeOuterClass.ShareKeysRequest;
import crypten_lite.v1.EdgeOuterClass.UnmaskRequest;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The SecAgg messages of {@code edge.proto} to and from this client's types, with the checks
 * of {@code crypten_lite.transport.grpc.secagg_wire}: public keys and the seed commitment are
 * 32 bytes, sealed shares {@link SecAggCrypto#SEALED_SIZE}, Shamir shares {@link
 * Shamir#SHARE_SIZE}, client indices lie in {@code [1, 2^32)}, a repeated field holds at most
 * {@link #MAX_NEIGHBOURS} entries, the masked vector is {@code num_elements * ring_bits / 8}
 * little-endian bytes.
 *
 * <p>Building a request this client would send wrongly throws {@link IllegalArgumentException}
 * (nothing is sent); a server's state reply that fails the checks is an {@link
 * EdgeCommunicationException} naming the field (never its content).
 *
 * <p>What travels: to the server only public keys, sealed shares (opaque to it), the seed
 * commitment, the masked vector (uniformly random on its own), complaint indices and, at the
 * unmasking, the Shamir shares it asked for; from the server only public keys, indices and
 * sealed shares addressed to this client.
 */
public final class SecAggWire {
  /** At most this many entries in any repeated field. */
  public static final int MAX_NEIGHBOURS = 4096;
  /** The longest a state request may ask the server to wait for a stage change. */
  public static final long MAX_WAIT_MILLIS = 30_000;

  static final int MAX_FAILURE = 400;

  private SecAggWire() {}

  // -- requests -----------------------------------------------------------------------------

  /**
   * A state request; with {@code known} and {@code waitMillis} > 0 a long poll (capped at
   * {@link #MAX_WAIT_MILLIS}). Without {@code known} the server answers at once, so no wait is
   * sent.
   */
  public static SecAggStateRequest stateRequest(long round, SecAggStage known, long waitMillis) {
    if (waitMillis < 0) {
      throw new IllegalArgumentException("wait must be non-negative, got " + waitMillis + " ms");
    }
    return SecAggStateRequest.newBuilder()
        .setRound(round)
        .setKnownStage(known == null ? "" : known.wireName())
        .setWaitMs(known == null ? 0 : (int) Math.min(MAX_WAIT_MILLIS, waitMillis))
        .build();
  }

  /** The round's two public keys. */
  public static AdvertiseRequest advertiseRequest(
      long round, byte[] cipherPublic, byte[] maskPublic) {
    return AdvertiseRequest.newBuilder()
        .setRound(round)
        .setCipherPublic(bytes(cipherPublic, SecAggCrypto.KEY_SIZE, "cipher_public"))
        .setMaskPublic(bytes(maskPublic, SecAggCrypto.KEY_SIZE, "mask_public"))
        .build();
  }

  /** The seed commitment and one sealed share per neighbour. */
  public static ShareKeysRequest shareKeysRequest(
      long round, byte[] seedCommitment, List<EncryptedShare> shares) {
    entries(shares.size(), "shares");
    ShareKeysRequest.Builder request =
        ShareKeysRequest.newBuilder()
            .setRound(round)
            .setSeedCommitment(bytes(seedCommitment, SecAggCrypto.KEY_SIZE, "seed_commitment"));
    for (EncryptedShare share : shares) {
      request.addShares(encrypted(share));
    }
    return request.build();
  }

  /** The masked vector ({@code ringBits} 32 or 64, one element per value) and complaints. */
  public static MaskedInputRequest maskedRequest(
      long round, long numElements, int ringBits, long[] vector, long[] complaints) {
    RingWords.checkBits(ringBits);
    if (numElements < 1 || vector.length != numElements) {
      throw new IllegalArgumentException(
          "vector has " + vector.length + " elements; num_elements = " + numElements);
    }
    MaskedInputRequest.Builder request =
        MaskedInputRequest.newBuilder()
            .setRound(round)
            .setNumElements(numElements)
            .setRingBits(ringBits)
            .setVector(ByteString.copyFrom(RingWords.toBytes(vector, ringBits)));
    for (long index : indices(complaints, "complaints")) {
      request.addComplaints((int) index);
    }
    return request.build();
  }

  /** Self-mask shares of survivors and mask-key shares of the dropped, by neighbour index. */
  public static UnmaskRequest unmaskRequest(
      long round, Map<Long, byte[]> seedShares, Map<Long, byte[]> keyShares) {
    UnmaskRequest.Builder request = UnmaskRequest.newBuilder().setRound(round);
    entries(seedShares.size(), "seed_shares");
    entries(keyShares.size(), "key_shares");
    for (Map.Entry<Long, byte[]> e : seedShares.entrySet()) {
      request.addSeedShares(indexed(e.getKey(), e.getValue(), "seed_shares"));
    }
    for (Map.Entry<Long, byte[]> e : keyShares.entrySet()) {
      request.addKeyShares(indexed(e.getKey(), e.getValue(), "key_shares"));
    }
    return request.build();
  }

  // -- state replies --------------------------------------------------------------------------

  /** A server's state reply, checked; {@code failure} comes back as printable ASCII. */
  public static SecAggState state(SecAggStateReply reply) throws EdgeCommunicationException {
    try {
      return checkedState(reply);
    } catch (IllegalArgumentException err) {
      throw new EdgeCommunicationException(
          "server sent a malformed SecAgg state: " + err.getMessage());
    }
  }

  private static SecAggState checkedState(SecAggStateReply reply) {
    SecAggStage stage = SecAggStage.fromWire(reply.getStage());
    if (stage == null) {
      throw new IllegalArgumentException("unknown stage '" + Text.clean(reply.getStage(), 40) + "'");
    }
    entries(reply.getNeighboursCount(), "neighbours");
    List<NeighbourKey> neighbours = new ArrayList<>();
    for (EdgeOuterClass.NeighbourKey n : reply.getNeighboursList()) {
      neighbours.add(
          new NeighbourKey(
              index(n.getIndex(), "a neighbour index"),
              sized(n.getCipherPublic(), SecAggCrypto.KEY_SIZE, "a neighbour's cipher_public"),
              sized(n.getMaskPublic(), SecAggCrypto.KEY_SIZE, "a neighbour's mask_public")));
    }
    entries(reply.getInboxCount(), "inbox");
    List<EncryptedShare> inbox = new ArrayList<>();
    for (EdgeOuterClass.EncryptedShare s : reply.getInboxList()) {
      inbox.add(
          new EncryptedShare(
              index(s.getSender(), "an encrypted share's sender"),
              index(s.getReceiver(), "an encrypted share's receiver"),
              sized(s.getSealed(), SecAggCrypto.SEALED_SIZE, "an encrypted share's sealed")));
    }
    return SecAggState.builder(reply.getRound(), stage)
        .index(Integer.toUnsignedLong(reply.getIndex()))
        .threshold(Integer.toUnsignedLong(reply.getThreshold()))
        .neighbours(neighbours)
        .shared(indexList(reply.getSharedList(), "shared"))
        .inbox(inbox)
        .survivors(indexList(reply.getSurvivorsList(), "survivors"))
        .dropped(indexList(reply.getDroppedList(), "dropped"))
        .failure(Text.clean(reply.getFailure(), MAX_FAILURE))
        .build();
  }

  /** The reply a server would send for {@code state} (fake servers and tests). */
  public static SecAggStateReply stateReply(SecAggState state) {
    SecAggStateReply.Builder reply =
        SecAggStateReply.newBuilder()
            .setRound(state.round())
            .setStage(state.stage().wireName())
            .setIndex((int) state.index())
            .setThreshold((int) state.threshold())
            .setFailure(state.failure());
    for (NeighbourKey n : state.neighbours()) {
      reply.addNeighbours(
          EdgeOuterClass.NeighbourKey.newBuilder()
              .setIndex((int) n.index())
              .setCipherPublic(ByteString.copyFrom(n.cipherPublic()))
              .setMaskPublic(ByteString.copyFrom(n.maskPublic())));
    }
    for (long v : state.shared()) {
      reply.addShared((int) v);
    }
    for (EncryptedShare s : state.inbox()) {
      reply.addInbox(encrypted(s));
    }
    for (long v : state.survivors()) {
      reply.addSurvivors((int) v);
    }
    for (long v : state.dropped()) {
      reply.addDropped((int) v);
    }
    return reply.build();
  }

  // -- checks ---------------------------------------------------------------------------------

  private static EdgeOuterClass.EncryptedShare encrypted(EncryptedShare share) {
    return EdgeOuterClass.EncryptedShare.newBuilder()
        .setSender((int) checkIndex(share.sender(), "an encrypted share's sender"))
        .setReceiver((int) checkIndex(share.receiver(), "an encrypted share's receiver"))
        .setSealed(bytes(share.sealed(), SecAggCrypto.SEALED_SIZE, "an encrypted share's sealed"))
        .build();
  }

  private static IndexedShare indexed(Long index, byte[] share, String what) {
    return IndexedShare.newBuilder()
        .setIndex((int) checkIndex(index, "an index in " + what))
        .setShare(bytes(share, Shamir.SHARE_SIZE, "a share in " + what))
        .build();
  }

  private static ByteString bytes(byte[] value, int size, String what) {
    if (value == null || value.length != size) {
      throw new IllegalArgumentException(
          what + " must be " + size + " bytes, got " + (value == null ? "none" : value.length));
    }
    return ByteString.copyFrom(value);
  }

  private static byte[] sized(ByteString value, int size, String what) {
    if (value.size() != size) {
      throw new IllegalArgumentException(what + " must be " + size + " bytes, got " + value.size());
    }
    return value.toByteArray();
  }

  private static void entries(int count, String what) {
    if (count > MAX_NEIGHBOURS) {
      throw new IllegalArgumentException(
          what + " has " + count + " entries; at most " + MAX_NEIGHBOURS);
    }
  }

  private static long index(int wire, String what) {
    return checkIndex(Integer.toUnsignedLong(wire), what);
  }

  static long checkIndex(long value, String what) {
    if (value < 1 || value >= Shamir.MAX_X) {
      throw new IllegalArgumentException(what + " must be an integer in [1, 2^32)");
    }
    return value;
  }

  private static long[] indices(long[] values, String what) {
    entries(values.length, what);
    for (long v : values) {
      checkIndex(v, "an index in " + what);
    }
    return values;
  }

  private static long[] indexList(List<Integer> wire, String what) {
    entries(wire.size(), what);
    long[] out = new long[wire.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = index(wire.get(i), "an index in " + what);
    }
    return out;
  }
}
