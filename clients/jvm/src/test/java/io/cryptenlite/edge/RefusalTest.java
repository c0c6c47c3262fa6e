package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import org.junit.jupiter.api.Test;

/** Status codes to refusals, as crypten_lite.transport.grpc.gateway maps them. */
class RefusalTest {
  @Test
  void everyRefusalCodeMapsAsInPython() {
    assertEquals(Refusal.INVALID, Refusal.fromStatus(Status.Code.INVALID_ARGUMENT));
    assertEquals(Refusal.INVALID, Refusal.fromStatus(Status.Code.RESOURCE_EXHAUSTED));
    assertEquals(Refusal.DUPLICATE, Refusal.fromStatus(Status.Code.ALREADY_EXISTS));
    assertEquals(Refusal.STALE, Refusal.fromStatus(Status.Code.FAILED_PRECONDITION));
    assertEquals(Refusal.UNAUTHENTICATED, Refusal.fromStatus(Status.Code.UNAUTHENTICATED));
    assertEquals(Refusal.UNAUTHENTICATED, Refusal.fromStatus(Status.Code.PERMISSION_DENIED));
    assertEquals(Refusal.UNAVAILABLE, Refusal.fromStatus(Status.Code.UNAVAILABLE));
    for (Status.Code other :
        new Status.Code[] {
          Status.Code.OK, Status.Code.INTERNAL, Status.Code.DEADLINE_EXCEEDED,
          Status.Code.CANCELLED, Status.Code.UNKNOWN, Status.Code.UNIMPLEMENTED
        }) {
      assertNull(Refusal.fromStatus(other), other.name());
    }
    for (Refusal refusal : Refusal.values()) {
      assertEquals(refusal, Refusal.fromStatus(refusal.statusCode()));
    }
    assertEquals("unauthenticated", Refusal.UNAUTHENTICATED.wireName());
  }

  @Test
  void theServersMessagePassesThrough() {
    EdgeException err =
        StatusErrors.fromStatus(
            Status.INVALID_ARGUMENT.withDescription("num_elements is 7, this job expects 6"),
            "h:1",
            1000);
    EdgeRefusalException refusal = assertInstanceOf(EdgeRefusalException.class, err);
    assertEquals(Refusal.INVALID, refusal.refusal());
    assertEquals("num_elements is 7, this job expects 6", refusal.detail());
    assertEquals("invalid: num_elements is 7, this job expects 6", refusal.getMessage());
  }

  @Test
  void otherCodesAreTimeoutsOrCommunicationErrors() {
    EdgeException timeout = StatusErrors.fromStatus(Status.DEADLINE_EXCEEDED, "h:1", 2500);
    assertInstanceOf(EdgeTimeoutException.class, timeout);
    assertEquals("server h:1 did not answer within 2.5s", timeout.getMessage());
    EdgeException internal =
        StatusErrors.fromStatus(Status.INTERNAL.withDescription("internal error"), "h:1", 1000);
    assertInstanceOf(EdgeCommunicationException.class, internal);
    assertEquals("server h:1: INTERNAL: internal error", internal.getMessage());
  }

  @Test
  void messagesAreCleanedAndBounded() {
    String noisy = "bad\u0000value\u00e9" + "x".repeat(500);
    EdgeRefusalException refusal =
        (EdgeRefusalException)
            StatusErrors.fromStatus(Status.FAILED_PRECONDITION.withDescription(noisy), "h:1", 1);
    assertTrue(refusal.detail().startsWith("bad?value?x"));
    assertEquals(400, refusal.detail().length());
    EdgeRefusalException local =
        (EdgeRefusalException)
            StatusErrors.fromStatus(
                Status.UNAVAILABLE
                    .withDescription("io exception\nChannel Pipeline: [SslHandler#0]")
                    .withCause(new javax.net.ssl.SSLHandshakeException("PKIX path building failed")),
                "h:1",
                1);
    assertEquals(
        "io exception (SSLHandshakeException: PKIX path building failed)", local.detail());
  }

  @Test
  void onlyTheSameUploadDuplicateCountsAsDelivered() {
    assertTrue(
        new EdgeRefusalException(Refusal.DUPLICATE, "same upload already stored for round 3 (this nonce)")
            .isOwnDuplicate());
    assertFalse(
        new EdgeRefusalException(Refusal.DUPLICATE, "already delivered a different update for round 3")
            .isOwnDuplicate());
    assertFalse(new EdgeRefusalException(Refusal.DUPLICATE, "nonce already used (replay)").isOwnDuplicate());
    assertFalse(new EdgeRefusalException(Refusal.STALE, "same upload already stored").isOwnDuplicate());
  }
}
