package io.cryptenlite.edge;

import crypten_lite.v1.EdgeOuterClass.AdvertiseRequest;
import crypten_lite.v1.EdgeOuterClass.MaskedInputRequest;
import crypten_lite.v1.EdgeOuterClass.ShareKeysRequest;
import crypten_lite.v1.EdgeOuterClass.UnmaskRequest;
import java.io.Closeable;

/**
 * How a {@link SecAggClient} reaches the job's one server ({@code
 * crypten_lite.client.links.ServerLink}'s SecAgg part). {@link ServerLink} implements it over
 * gRPC; tests implement it in memory. Uploads return the serialized request size in bytes.
 */
public interface SecAggLink extends Closeable {
  /** The server's round info. */
  RoundInfo roundInfo() throws EdgeException;

  /**
   * This client's view of round {@code round}; with {@code known} (the stage last seen) and
   * {@code waitMillis} > 0 a long poll: the server answers once the stage differs from {@code
   * known}, or after {@code waitMillis}.
   */
  SecAggState secAggState(long round, SecAggStage known, long waitMillis) throws EdgeException;

  int advertise(AdvertiseRequest request) throws EdgeException;

  int shareKeys(ShareKeysRequest request) throws EdgeException;

  int submitMasked(MaskedInputRequest request) throws EdgeException;

  int unmask(UnmaskRequest request) throws EdgeException;

  /** Serialized bytes of the SecAgg state replies received so far. */
  long secAggReceivedBytes();

  @Override
  void close();
}
