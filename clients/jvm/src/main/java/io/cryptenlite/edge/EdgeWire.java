package io.cryptenlite.edge;

import com.google.protobuf.ByteString;
import crypten_lite.v1.EdgeOuterClass.InferReply;
import crypten_lite.v1.EdgeOuterClass.InferRequest;
import crypten_lite.v1.EdgeOuterClass.RoundInfoReply;
import crypten_lite.v1.EdgeOuterClass.SubmitRequest;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The edge messages of {@code protos/crypten_lite/_proto/edge.proto} to and from this client's
 * types, byte for byte as {@code crypten_lite.transport.grpc.edge_wire}: vectors are raw
 * little-endian bytes ({@code <u4} for a 32-bit ring, {@code <u8} for 64), the model {@code
 * <f4}. Requests are checked before they are built; a server's reply that makes no sense is an
 * {@link EdgeCommunicationException}.
 *
 * <p>What travels: {@code SubmitRequest} = round, the upload's 16-byte nonce, num_elements,
 * ring_bits and either one 32-byte seed or the masked vector; {@code InferRequest} = a 16-byte
 * query id, the model name, shape, frac_bits and a seed or the masked input. Seeds and vectors
 * are secret shares: each goes to one server only.
 */
public final class EdgeWire {
  /** Nonce length of an upload. */
  public static final int NONCE_SIZE = 16;

  static final int MAX_DIMS = 8;
  static final int MAX_QUERY_ID = 64;
  static final int MAX_MODEL_NAME = 128;

  private EdgeWire() {}

  /** A server's round info, checked. */
  public static RoundInfo roundInfo(RoundInfoReply reply) throws EdgeCommunicationException {
    RoundState state = RoundState.fromWire(reply.getState());
    if (state == null) {
      throw new EdgeCommunicationException(
          "server sent unknown round state '" + Text.clean(reply.getState(), 80) + "'");
    }
    QuantSpec.Scheme scheme = QuantSpec.Scheme.fromWire(reply.getQuantScheme());
    if ((reply.getRingBits() != 32 && reply.getRingBits() != 64) || scheme == null) {
      throw new EdgeCommunicationException(
          "server sent ring_bits="
              + Integer.toUnsignedString(reply.getRingBits())
              + ", scheme='"
              + Text.clean(reply.getQuantScheme(), 80)
              + "'");
    }
    QuantSpec quant;
    try {
      quant = QuantSpec.of(scheme, reply.getQuantClip());
    } catch (EncodingException err) {
      throw new EdgeCommunicationException("server sent an unusable quantization: " + err.getMessage());
    }
    ByteString model = reply.getModel();
    if (model.size() % 4 != 0) {
      throw new EdgeCommunicationException(
          "server sent a model whose size is not a multiple of 4 bytes");
    }
    float[] floats = new float[model.size() / 4];
    ByteBuffer in = model.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < floats.length; i++) {
      floats[i] = in.getFloat();
    }
    return new RoundInfo(
        reply.getJobId(),
        reply.getRound(),
        state,
        reply.getNumElements(),
        reply.getRingBits(),
        quant,
        reply.getNumServers(),
        reply.getServerIndex(),
        reply.getMinClients(),
        floats);
  }

  /** The {@code SubmitRequest} of one server's part of an upload: a seed or the vector. */
  public static SubmitRequest submitRequest(
      long round, byte[] nonce, long numElements, int ringBits, byte[] seed, long[] vector) {
    RingWords.checkBits(ringBits);
    if (nonce == null || nonce.length != NONCE_SIZE) {
      throw new IllegalArgumentException("nonce must be " + NONCE_SIZE + " bytes");
    }
    SubmitRequest.Builder request =
        SubmitRequest.newBuilder()
            .setRound(round)
            .setNonce(ByteString.copyFrom(nonce))
            .setNumElements(numElements)
            .setRingBits(ringBits);
    checkPart(seed, vector);
    if (seed != null) {
      return request.setSeed(ByteString.copyFrom(seed)).build();
    }
    if (vector.length != numElements) {
      throw new IllegalArgumentException(
          "vector must hold num_elements = " + numElements + " elements");
    }
    return request.setVector(ByteString.copyFrom(RingWords.toBytes(vector, ringBits))).build();
  }

  /** The {@code InferRequest} of one server's part of an input (64-bit ring). */
  public static InferRequest inferRequest(
      byte[] queryId, String model, long[] shape, int fracBits, byte[] seed, long[] vector) {
    checkQuery(queryId, model, fracBits);
    checkPart(seed, vector);
    InferRequest.Builder request =
        InferRequest.newBuilder()
            .setQueryId(ByteString.copyFrom(queryId))
            .setModel(model)
            .setFracBits(fracBits);
    for (long dim : shape) {
      request.addShape(dim);
    }
    if (seed != null) {
      return request.setSeed(ByteString.copyFrom(seed)).build();
    }
    if (vector.length != product(shape)) {
      throw new IllegalArgumentException(
          "vector must hold prod(shape) = " + product(shape) + " elements");
    }
    return request.setVector(ByteString.copyFrom(RingWords.toBytes(vector, 64))).build();
  }

  /** A server's output share, checked against the message limit and its own shape. */
  public static InferenceShare inferenceShare(InferReply reply, long maxMessageBytes)
      throws EdgeCommunicationException {
    long[] shape = new long[reply.getShapeCount()];
    for (int i = 0; i < shape.length; i++) {
      shape[i] = reply.getShape(i);
    }
    if (shape.length > MAX_DIMS) {
      throw new EdgeCommunicationException(
          "server sent a bad output share: shape has " + shape.length + " dimensions; at most "
              + MAX_DIMS);
    }
    long elements = product(shape);
    if (elements < 0 || elements > maxMessageBytes / 8) {
      throw new EdgeCommunicationException(
          "server sent a bad output share: the shape exceeds the message limit of "
              + maxMessageBytes + " bytes");
    }
    if (reply.getShare().size() != 8 * elements) {
      throw new EdgeCommunicationException(
          "server sent " + reply.getShare().size() + " share bytes for " + elements
              + " elements");
    }
    return new InferenceShare(
        reply.getQueryId().toByteArray(),
        shape,
        reply.getFracBits(),
        RingWords.fromBytes(reply.getShare().toByteArray(), 64));
  }

  /** prod(shape) as unsigned dims; -1 if it overflows. */
  static long product(long[] shape) {
    long total = 1;
    for (long dim : shape) {
      if (dim < 0) {
        return -1;
      }
      if (dim != 0 && total > Long.MAX_VALUE / dim) {
        return -1;
      }
      total *= dim;
    }
    return total;
  }

  private static void checkPart(byte[] seed, long[] vector) {
    if ((seed == null) == (vector == null)) {
      throw new IllegalArgumentException("exactly one of seed and vector must be set");
    }
    if (seed != null && seed.length != SeedExpander.SEED_SIZE) {
      throw new IllegalArgumentException("seed must be " + SeedExpander.SEED_SIZE + " bytes");
    }
  }

  static void checkQuery(byte[] queryId, String model, int fracBits) {
    if (queryId == null || queryId.length == 0 || queryId.length > MAX_QUERY_ID) {
      throw new IllegalArgumentException("query_id must be 1-" + MAX_QUERY_ID + " bytes");
    }
    boolean printable = model != null && !model.isEmpty() && model.length() <= MAX_MODEL_NAME;
    if (printable) {
      byte[] ascii = model.getBytes(StandardCharsets.UTF_8);
      for (byte b : ascii) {
        printable &= b >= 0x20 && b < 0x7F;
      }
    }
    if (!printable) {
      throw new IllegalArgumentException(
          "model must be 1-" + MAX_MODEL_NAME + " printable ASCII characters");
    }
    FixedPoint.checkFracBits(fracBits);
  }
}
