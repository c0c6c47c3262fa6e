package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import crypten_lite.v1.EdgeOuterClass.InferReply;
import crypten_lite.v1.EdgeOuterClass.InferRequest;
import crypten_lite.v1.EdgeOuterClass.SubmitRequest;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** EdgeClient against k in-process fake servers. */
class EdgeClientTest {
  private static final LinkOptions OPTIONS =
      LinkOptions.defaults().withCallTimeoutMillis(5_000).withConnectTimeoutMillis(2_000);

  private final List<FakeEdge.InProcess> servers = new ArrayList<>();

  private List<FakeEdge> fakes(int k, int ringBits) throws Exception {
    List<FakeEdge> out = new ArrayList<>();
    for (int i = 0; i < k; i++) {
      FakeEdge fake = new FakeEdge();
      int index = i;
      fake.roundInfo =
          (request, call) -> FakeEdge.round(2, "open", index, k).setRingBits(ringBits).build();
      servers.add(fake.start());
      out.add(fake);
    }
    return out;
  }

  private EdgeClient client() {
    List<ServerLink> links = new ArrayList<>();
    for (FakeEdge.InProcess server : servers) {
      links.add(server.link(OPTIONS));
    }
    return new EdgeClient(links);
  }

  @AfterEach
  void stop() {
    servers.forEach(FakeEdge.InProcess::close);
  }

  @Test
  void anUploadReconstructsToTheEncodedUpdate() throws Exception {
    for (int bits : new int[] {32, 64}) {
      for (int k : new int[] {2, 3}) {
        stop();
        servers.clear();
        List<FakeEdge> fakes = fakes(k, bits);
        double[] x = {0.5, -0.25, 3.0, -1e-9};
        try (EdgeClient client = client()) {
          RoundInfo info = client.roundInfo();
          UploadReport report = client.submitUpdate(x, info);
          long[] expected = UpdateEncoder.encode(x, info.quant(), bits);
          long[] total = new long[x.length];
          ByteString nonce = fakes.get(0).submits.get(0).getNonce();
          for (int i = 0; i < k; i++) {
            SubmitRequest request = fakes.get(i).submits.get(0);
            assertEquals(2, request.getRound());
            assertEquals(4, request.getNumElements());
            assertEquals(bits, request.getRingBits());
            assertEquals(16, request.getNonce().size());
            assertEquals(nonce, request.getNonce()); // one nonce for every server
            assertEquals(request.getSerializedSize(), report.bytesPerServer()[i]);
            long[] share;
            if (i < k - 1) {
              assertEquals(SubmitRequest.PartCase.SEED, request.getPartCase());
              share = SeedExpander.expand(request.getSeed().toByteArray(), x.length, bits);
            } else {
              assertEquals(SubmitRequest.PartCase.VECTOR, request.getPartCase());
              assertEquals(x.length * bits / 8, request.getVector().size());
              share = RingWords.fromBytes(request.getVector().toByteArray(), bits);
            }
            for (int j = 0; j < x.length; j++) {
              total[j] = RingWords.reduce(total[j] + share[j], bits);
            }
          }
          assertArrayEquals(expected, total, "bits=" + bits + " k=" + k);
          assertEquals(2, report.round());
          assertEquals(x.length * bits / 8, report.plaintextBytes());
          long sum = 0;
          for (int b : report.bytesPerServer()) {
            sum += b;
          }
          assertEquals(sum, report.totalBytes());
        }
      }
    }
  }

  @Test
  void aWrongLengthIsCaughtLocallyOrLeftToTheServers() throws Exception {
    List<FakeEdge> fakes = fakes(2, 32);
    fakes.get(0).submit =
        (request, call) -> {
          throw FakeEdge.refuse(
              Status.INVALID_ARGUMENT,
              "num_elements is " + request.getNumElements() + ", this job expects 4");
        };
    try (EdgeClient client = client()) {
      RoundInfo info = client.roundInfo();
      assertThrows(EncodingException.class, () -> client.submitUpdate(new double[5], info));
      assertEquals(0, fakes.get(0).submitCalls.get());
      EdgeRefusalException err =
          assertThrows(
              EdgeRefusalException.class, () -> client.submitUpdate(new double[5], info, false));
      assertEquals("num_elements is 5, this job expects 4", err.detail());
      assertEquals(0, fakes.get(1).submitCalls.get()); // the first refusal stops the upload
      assertThrows(
          EncodingException.class,
          () -> client.submitUpdate(new double[] {0, Double.NaN, 0, 0}, info));
    }
  }

  @Test
  void roundInfoChecksTheServersAgree() throws Exception {
    List<FakeEdge> fakes = fakes(2, 32);
    try (EdgeClient client = client()) {
      assertEquals(RoundState.OPEN, client.roundInfo().state());
      fakes.get(1).roundInfo = (r, c) -> FakeEdge.round(3, "open", 1, 2).build();
      assertEquals(RoundState.CLOSED, client.roundInfo().state()); // rounds differ
      fakes.get(1).roundInfo = (r, c) -> FakeEdge.round(2, "finished", 1, 2).build();
      assertEquals(RoundState.FINISHED, client.roundInfo().state());
      fakes.get(1).roundInfo = (r, c) -> FakeEdge.round(2, "open", 0, 2).build();
      EdgeCommunicationException who = assertThrows(EdgeCommunicationException.class, client::roundInfo);
      assertEquals("server 1 says it is server 0 of 2; this client has 2 servers", who.getMessage());
      fakes.get(1).roundInfo = (r, c) -> FakeEdge.round(2, "open", 1, 2).setQuantClip(0.5).build();
      EdgeCommunicationException job = assertThrows(EdgeCommunicationException.class, client::roundInfo);
      assertEquals("server 1 disagrees with server 0 on the job", job.getMessage());
    }
  }

  @Test
  void waitForRoundPollsUntilANewRoundOpens() throws Exception {
    List<FakeEdge> fakes = fakes(2, 32);
    for (int i = 0; i < 2; i++) {
      int index = i;
      fakes.get(i).roundInfo =
          (r, call) ->
              call < 3
                  ? FakeEdge.round(1, "closed", index, 2).build()
                  : FakeEdge.round(2, "open", index, 2).build();
    }
    try (EdgeClient client = client()) {
      RoundInfo info = client.waitForRound(1, 10_000);
      assertEquals(2, info.round());
      assertEquals(RoundState.OPEN, info.state());
      EdgeTimeoutException err =
          assertThrows(EdgeTimeoutException.class, () -> client.waitForRound(2, 300));
      assertEquals("no round after 2 opened within 0.3s", err.getMessage());
    }
  }

  @Test
  void inferenceSumsTheServersSharesConcurrently() throws Exception {
    int k = 3;
    List<FakeEdge> fakes = fakes(k, 64);
    CountDownLatch allArrived = new CountDownLatch(k);
    for (FakeEdge fake : fakes) {
      // a linear "model": each server doubles its own input share; it answers only once every
      // server holds its part (as the real compute servers do)
      fake.infer =
          (request, call) -> {
            allArrived.countDown();
            if (!allArrived.await(5, TimeUnit.SECONDS)) {
              throw FakeEdge.refuse(Status.UNAVAILABLE, "queries did not arrive together");
            }
            int n = 1;
            for (long d : request.getShapeList()) {
              n *= (int) d;
            }
            long[] share =
                request.getPartCase() == InferRequest.PartCase.SEED
                    ? SeedExpander.expand(request.getSeed().toByteArray(), n, 64)
                    : RingWords.fromBytes(request.getVector().toByteArray(), 64);
            for (int i = 0; i < n; i++) {
              share[i] *= 2;
            }
            return InferReply.newBuilder()
                .setQueryId(request.getQueryId())
                .addAllShape(request.getShapeList())
                .setFracBits(request.getFracBits())
                .setShare(ByteString.copyFrom(RingWords.toBytes(share, 64)))
                .build();
          };
    }
    double[] x = {0.5, -1.25, 3.0, 0.0, -0.001, 7.75};
    try (EdgeClient client = client()) {
      double[] y = client.infer("mlp", new long[] {2, 3}, x, 16);
      double[] expected = FixedPoint.decode(FixedPoint.encode(x, 16), 16);
      for (int i = 0; i < x.length; i++) {
        assertEquals(2 * expected[i], y[i], 0.0);
      }
      InferRequest first = fakes.get(0).infers.get(0);
      assertEquals(16, first.getQueryId().size());
      assertEquals("mlp", first.getModel());
      for (FakeEdge fake : fakes) {
        assertEquals(first.getQueryId(), fake.infers.get(0).getQueryId());
      }
      assertThrows(
          IllegalArgumentException.class, () -> client.infer("mlp", new long[] {4}, x, 16));
      assertThrows(
          EncodingException.class,
          () -> client.infer("mlp", new long[] {1}, new double[] {Double.NaN}, 16));
    }
  }

  @Test
  void inferenceChecksTheRepliesAndRaisesRefusals() throws Exception {
    List<FakeEdge> fakes = fakes(2, 64);
    for (FakeEdge fake : fakes) {
      fake.infer =
          (request, call) ->
              InferReply.newBuilder()
                  .setQueryId(ByteString.copyFrom(new byte[16])) // not the query's id
                  .addShape(1)
                  .setFracBits(16)
                  .setShare(ByteString.copyFrom(new byte[8]))
                  .build();
    }
    try (EdgeClient client = client()) {
      EdgeCommunicationException err =
          assertThrows(
              EdgeCommunicationException.class,
              () -> client.infer("m", new long[] {1}, new double[] {1}, 16));
      assertEquals("server 0's output share does not match the query or server 0's", err.getMessage());
      fakes.get(1).infer =
          (request, call) -> { throw FakeEdge.refuse(Status.INVALID_ARGUMENT, "unknown model 'm'"); };
      EdgeRefusalException refusal =
          assertThrows(
              EdgeRefusalException.class,
              () -> client.infer("m", new long[] {1}, new double[] {1}, 16));
      assertTrue(refusal.getMessage().startsWith("invalid: unknown model"), refusal.getMessage());
    }
  }

  @Test
  void aClientNeedsTwoToEightServers() {
    assertThrows(IllegalArgumentException.class, () -> new EdgeClient(new ArrayList<>()));
  }
}
