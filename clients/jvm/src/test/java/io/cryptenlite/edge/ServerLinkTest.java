package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import crypten_lite.v1.EdgeOuterClass.SubmitReply;
import crypten_lite.v1.EdgeOuterClass.SubmitRequest;
import io.grpc.Metadata;
import io.grpc.Status;
import org.junit.jupiter.api.Test;

/** ServerLink over grpc-java's in-process transport: retries and the duplicate rule. */
class ServerLinkTest {
  private static final LinkOptions FAST =
      LinkOptions.defaults().withCallTimeoutMillis(5_000).withConnectTimeoutMillis(5_000);

  private static SubmitRequest seedRequest() {
    return EdgeWire.submitRequest(1, new byte[16], 4, 32, new byte[32], null);
  }

  @Test
  void unavailableIsRetriedUntilTheServerAnswers() throws Exception {
    FakeEdge fake = new FakeEdge();
    fake.roundInfo =
        (request, call) -> {
          if (call <= 2) {
            throw FakeEdge.refuse(Status.UNAVAILABLE, "service not ready");
          }
          return FakeEdge.round(3, "open", 0, 2).build();
        };
    try (FakeEdge.InProcess server = fake.start();
        ServerLink link = server.link(FAST)) {
      long start = System.nanoTime();
      RoundInfo info = link.roundInfo();
      long millis = (System.nanoTime() - start) / 1_000_000;
      assertEquals(3, info.round());
      assertEquals(RoundState.OPEN, info.state());
      assertEquals(1, info.model().length);
      assertEquals(1.0f, info.model()[0]);
      assertEquals(3, fake.roundInfoCalls.get());
      assertTrue(millis >= 50 + 100 - 5, "backoff 50 ms then 100 ms, took " + millis);
    }
  }

  @Test
  void unavailableIsRaisedAfterTheConnectTimeout() throws Exception {
    FakeEdge fake = new FakeEdge();
    fake.roundInfo = (request, call) -> { throw FakeEdge.refuse(Status.UNAVAILABLE, "server busy: 2 calls"); };
    try (FakeEdge.InProcess server = fake.start();
        ServerLink link = server.link(FAST.withConnectTimeoutMillis(300))) {
      EdgeRefusalException err = assertThrows(EdgeRefusalException.class, link::roundInfo);
      assertEquals(Refusal.UNAVAILABLE, err.refusal());
      assertTrue(err.detail().contains("still unavailable after 0.3s: server busy: 2 calls"), err.detail());
      assertTrue(fake.roundInfoCalls.get() >= 3, "calls: " + fake.roundInfoCalls.get());
    }
  }

  @Test
  void otherRefusalsAreRaisedAtOnce() throws Exception {
    FakeEdge fake = new FakeEdge();
    fake.submit = (request, call) -> { throw FakeEdge.refuse(Status.FAILED_PRECONDITION, "round 1 is not open"); };
    try (FakeEdge.InProcess server = fake.start();
        ServerLink link = server.link(FAST)) {
      EdgeRefusalException err = assertThrows(EdgeRefusalException.class, () -> link.submit(seedRequest()));
      assertEquals(Refusal.STALE, err.refusal());
      assertEquals("round 1 is not open", err.detail());
      assertEquals(1, fake.submitCalls.get());
    }
  }

  @Test
  void aRetriedSubmitThatLandedCountsAsDelivered() throws Exception {
    FakeEdge fake = new FakeEdge();
    fake.submit =
        (request, call) -> {
          if (call == 1) { // stored, but the answer was lost
            throw FakeEdge.refuse(Status.UNAVAILABLE, "connection reset");
          }
          throw FakeEdge.refuse(
              Status.ALREADY_EXISTS, "same upload already stored for round 1 (this nonce)");
        };
    try (FakeEdge.InProcess server = fake.start();
        ServerLink link = server.link(FAST)) {
      SubmitRequest request = seedRequest();
      assertEquals(request.getSerializedSize(), link.submit(request));
      assertEquals(2, fake.submitCalls.get());
      assertEquals(fake.submits.get(0), fake.submits.get(1)); // the very same bytes again
    }
  }

  @Test
  void aDuplicateOnTheFirstAttemptOrForAnotherUploadIsRaised() throws Exception {
    FakeEdge first = new FakeEdge();
    first.submit =
        (request, call) -> {
          throw FakeEdge.refuse(Status.ALREADY_EXISTS, "same upload already stored for round 1");
        };
    FakeEdge other = new FakeEdge();
    other.submit =
        (request, call) -> {
          if (call == 1) {
            throw FakeEdge.refuse(Status.UNAVAILABLE, "server busy");
          }
          throw FakeEdge.refuse(Status.ALREADY_EXISTS, "already delivered a different update for round 1");
        };
    try (FakeEdge.InProcess a = first.start();
        ServerLink link = a.link(FAST)) {
      EdgeRefusalException err = assertThrows(EdgeRefusalException.class, () -> link.submit(seedRequest()));
      assertEquals(Refusal.DUPLICATE, err.refusal());
    }
    try (FakeEdge.InProcess b = other.start();
        ServerLink link = b.link(FAST)) {
      EdgeRefusalException err = assertThrows(EdgeRefusalException.class, () -> link.submit(seedRequest()));
      assertEquals("already delivered a different update for round 1", err.detail());
      assertEquals(2, other.submitCalls.get());
    }
  }

  @Test
  void aTimedOutSubmitIsRetriedButATimedOutQueryIsNot() throws Exception {
    FakeEdge fake = new FakeEdge();
    fake.submit =
        (request, call) -> {
          if (call == 1) {
            Thread.sleep(600);
          }
          return SubmitReply.getDefaultInstance();
        };
    fake.roundInfo =
        (request, call) -> {
          Thread.sleep(600);
          return FakeEdge.round(1, "open", 0, 2).build();
        };
    LinkOptions shortCalls = FAST.withCallTimeoutMillis(200);
    try (FakeEdge.InProcess server = fake.start();
        ServerLink link = server.link(shortCalls)) {
      link.submit(seedRequest());
      assertEquals(2, fake.submitCalls.get());
      EdgeTimeoutException err = assertThrows(EdgeTimeoutException.class, link::roundInfo);
      assertTrue(err.getMessage().endsWith("did not answer within 0.2s"), err.getMessage());
      assertEquals(1, fake.roundInfoCalls.get());
    }
  }

  @Test
  void aTokenTravelsInTheCallMetadata() throws Exception {
    FakeEdge fake = new FakeEdge();
    fake.roundInfo = (request, call) -> FakeEdge.round(1, "open", 0, 2).build();
    try (FakeEdge.InProcess server = fake.start();
        ServerLink link =
            new ServerLink(
                "fake", server.channel(), new TokenCredentials("client-7", "v2.99.abc"), FAST)) {
      link.roundInfo();
      Metadata headers = fake.headers.get(0);
      assertEquals("client-7", headers.get(TokenCredentials.CLIENT_ID_KEY));
      assertEquals("v2.99.abc", headers.get(TokenCredentials.TOKEN_KEY));
    }
  }

  @Test
  void malformedRoundInfoIsACommunicationError() throws Exception {
    FakeEdge fake = new FakeEdge();
    fake.roundInfo = (request, call) -> FakeEdge.round(1, call == 1 ? "paused" : "open", 0, 2)
        .setRingBits(call == 2 ? 16 : 32).build();
    try (FakeEdge.InProcess server = fake.start();
        ServerLink link = server.link(FAST)) {
      EdgeCommunicationException state = assertThrows(EdgeCommunicationException.class, link::roundInfo);
      assertEquals("server sent unknown round state 'paused'", state.getMessage());
      EdgeCommunicationException ring = assertThrows(EdgeCommunicationException.class, link::roundInfo);
      assertEquals("server sent ring_bits=16, scheme='int16'", ring.getMessage());
    }
  }
}
