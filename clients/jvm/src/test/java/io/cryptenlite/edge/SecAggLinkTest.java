package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import crypten_lite.v1.EdgeOuterClass;
import crypten_lite.v1.EdgeOuterClass.SecAggAck;
import crypten_lite.v1.EdgeOuterClass.SecAggStateReply;
import crypten_lite.v1.EdgeOuterClass.SecAggStateRequest;
import io.grpc.Status;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** ServerLink's SecAgg calls over grpc-java's in-process transport. */
class SecAggLinkTest {
  private static final LinkOptions FAST =
      LinkOptions.defaults().withCallTimeoutMillis(300).withConnectTimeoutMillis(2_000);

  private static SecAggStateReply.Builder reply(String stage) {
    return SecAggWire.stateReply(SecAggState.builder(5, SecAggStage.ADVERTISE).index(2).build())
        .toBuilder()
        .setStage(stage);
  }

  @Test
  void aLongPollSaysWhatItKnowsAndItsDeadlineGrowsByTheWait() throws Exception {
    FakeEdge fake = new FakeEdge();
    fake.secAggState =
        (request, call) -> {
          Thread.sleep(request.getWaitMs() > 0 ? 600 : 0); // longer than the call timeout
          return reply("share_keys").build();
        };
    try (FakeEdge.InProcess server = fake.start();
        ServerLink link = server.link(FAST)) {
      SecAggState state = link.secAggState(5, SecAggStage.ADVERTISE, 1_000);
      assertEquals(SecAggStage.SHARE_KEYS, state.stage());
      assertEquals(2, state.index());
      SecAggStateRequest sent = (SecAggStateRequest) fake.secAggRequests.get(0);
      assertEquals(5, sent.getRound());
      assertEquals("advertise", sent.getKnownStage());
      assertEquals(1_000, sent.getWaitMs());
      assertEquals(reply("share_keys").build().getSerializedSize(), link.secAggReceivedBytes());
      // the wait is capped at 30 s
      assertEquals(30_000, SecAggWire.stateRequest(5, SecAggStage.ADVERTISE, 45_000).getWaitMs());
      // a plain poll asks for no wait and keeps the call's own deadline
      fake.secAggState =
          (request, call) -> {
            Thread.sleep(600);
            return reply("share_keys").build();
          };
      EdgeTimeoutException timeout =
          assertThrows(EdgeTimeoutException.class, () -> link.secAggState(5, null, 1_000));
      assertTrue(timeout.getMessage().endsWith("did not answer within 0.3s"), timeout.getMessage());
      assertEquals("", ((SecAggStateRequest) fake.secAggRequests.get(1)).getKnownStage());
      assertEquals(0, ((SecAggStateRequest) fake.secAggRequests.get(1)).getWaitMs());
    }
  }

  @Test
  void malformedStatesAreCommunicationErrors() throws Exception {
    FakeEdge fake = new FakeEdge();
    List<SecAggStateReply> replies = new ArrayList<>();
    replies.add(reply("resting").build());
    replies.add(
        reply("share_keys")
            .addNeighbours(
                EdgeOuterClass.NeighbourKey.newBuilder()
                    .setIndex(1)
                    .setCipherPublic(ByteString.copyFrom(new byte[31]))
                    .setMaskPublic(ByteString.copyFrom(new byte[32])))
            .build());
    replies.add(reply("masked_input").addShared(0).build());
    replies.add(
        reply("masked_input")
            .addInbox(
                EdgeOuterClass.EncryptedShare.newBuilder()
                    .setSender(1)
                    .setReceiver(2)
                    .setSealed(ByteString.copyFrom(new byte[159])))
            .build());
    String[] messages = {
      "unknown stage 'resting'",
      "a neighbour's cipher_public must be 32 bytes, got 31",
      "an index in shared must be an integer in [1, 2^32)",
      "an encrypted share's sealed must be 160 bytes, got 159",
    };
    fake.secAggState = (request, call) -> replies.get(call - 1);
    try (FakeEdge.InProcess server = fake.start();
        ServerLink link = server.link(FAST)) {
      for (String message : messages) {
        EdgeCommunicationException err =
            assertThrows(EdgeCommunicationException.class, () -> link.secAggState(5, null, 0));
        assertEquals("server sent a malformed SecAgg state: " + message, err.getMessage());
      }
    }
    // a failure text comes back printable and bounded
    SecAggState state =
        SecAggWire.state(reply("failed").setFailure("bad\u0000news" + "x".repeat(500)).build());
    assertEquals(SecAggWire.MAX_FAILURE, state.failure().length());
    assertTrue(state.failure().startsWith("bad?news"));
  }

  @Test
  void uploadsRetryUnavailableButNeverATimeout() throws Exception {
    FakeEdge fake = new FakeEdge();
    fake.advertise =
        (request, call) -> {
          if (call == 1) {
            throw FakeEdge.refuse(Status.UNAVAILABLE, "service not ready");
          }
          return SecAggAck.getDefaultInstance();
        };
    fake.shareKeys =
        (request, call) -> {
          Thread.sleep(600);
          return SecAggAck.getDefaultInstance();
        };
    fake.unmask = (request, call) -> { throw FakeEdge.refuse(Status.FAILED_PRECONDITION, "the unmasking of round 5 is closed"); };
    try (FakeEdge.InProcess server = fake.start();
        ServerLink link = server.link(FAST)) {
      EdgeOuterClass.AdvertiseRequest advert =
          SecAggWire.advertiseRequest(5, new byte[32], new byte[32]);
      assertEquals(advert.getSerializedSize(), link.advertise(advert));
      assertEquals(2, fake.secAggCalls.get());
      assertThrows(
          EdgeTimeoutException.class,
          () -> link.shareKeys(SecAggWire.shareKeysRequest(5, new byte[32], new ArrayList<>())));
      assertEquals(3, fake.secAggCalls.get()); // not retried: it may have landed
      EdgeRefusalException stale =
          assertThrows(
              EdgeRefusalException.class,
              () -> link.unmask(SecAggWire.unmaskRequest(5, new java.util.TreeMap<>(), new java.util.TreeMap<>())));
      assertEquals(Refusal.STALE, stale.refusal());
      assertEquals("the unmasking of round 5 is closed", stale.detail());
    }
  }

  @Test
  void fourClientsRunARoundOverGrpc() throws Exception {
    FakeSecAggServer round = new FakeSecAggServer("job-g", 3, 16, 4, 3);
    List<FakeEdge.InProcess> servers = new ArrayList<>();
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<SecAggReport>> runs = new ArrayList<>();
      long[] expected = new long[16];
      for (int i = 0; i < 4; i++) {
        FakeEdge fake = new FakeEdge();
        round.serve(fake, "client-" + i);
        FakeEdge.InProcess server = fake.start();
        servers.add(server);
        double[] x = new double[16];
        Random rng = new Random(i);
        for (int j = 0; j < 16; j++) {
          x[j] = rng.nextGaussian() * 0.3;
        }
        long[] ring = UpdateEncoder.encode(x, round.quant, 32);
        for (int j = 0; j < 16; j++) {
          expected[j] = RingWords.reduce(expected[j] + ring[j], 32);
        }
        SecAggClient client =
            new SecAggClient(server.link(LinkOptions.defaults()), new SecureRandom(), 5);
        runs.add(
            pool.submit(
                () -> {
                  try (SecAggClient c = client) {
                    return c.runRound(x, c.waitForRound(2, 10_000), 20_000);
                  }
                }));
      }
      for (Future<SecAggReport> run : runs) {
        SecAggReport report = run.get(60, TimeUnit.SECONDS);
        assertEquals(3, report.round());
        assertEquals(3, report.neighbours());
        assertEquals(SecAggStage.DONE, report.stage());
        assertTrue(report.downloadBytes() > 3 * SecAggCrypto.SEALED_SIZE, "download " + report.downloadBytes());
        assertTrue(report.polls() <= 12, "long polls, not busy polls: " + report.polls());
      }
      assertEquals(TestVectors.unsigned(expected), TestVectors.unsigned(round.aggregate()));
    } finally {
      pool.shutdownNow();
      servers.forEach(FakeEdge.InProcess::close);
    }
  }
}
