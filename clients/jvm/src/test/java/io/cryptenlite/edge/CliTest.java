package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import crypten_lite.v1.EdgeOuterClass.InferReply;
import crypten_lite.v1.EdgeOuterClass.InferRequest;
import io.grpc.Server;
import io.grpc.Status;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line against two real (plaintext, token-checking) grpc-netty servers. */
class CliTest {
  private static final String TOKEN = "v2.4102444800.0123abcd";

  @TempDir Path dir;
  private final List<FakeEdge> fakes = new ArrayList<>();
  private final List<Server> servers = new ArrayList<>();

  @BeforeEach
  void start() throws IOException {
    for (int i = 0; i < 2; i++) {
      FakeEdge fake = new FakeEdge();
      int index = i;
      fake.roundInfo = (request, call) -> FakeEdge.round(2, "open", index, 2).build();
      fake.submit =
          (request, call) -> {
            if (request.getNumElements() != 4) {
              throw FakeEdge.refuse(
                  Status.INVALID_ARGUMENT,
                  "num_elements is " + request.getNumElements() + ", this job expects 4");
            }
            return crypten_lite.v1.EdgeOuterClass.SubmitReply.getDefaultInstance();
          };
      fake.infer =
          (request, call) -> {
            int n = (int) EdgeWire.product(request.getShapeList().stream().mapToLong(Long::longValue).toArray());
            long[] share =
                request.getPartCase() == InferRequest.PartCase.SEED
                    ? SeedExpander.expand(request.getSeed().toByteArray(), n, 64)
                    : RingWords.fromBytes(request.getVector().toByteArray(), 64);
            return InferReply.newBuilder()
                .setQueryId(request.getQueryId())
                .addAllShape(request.getShapeList())
                .setFracBits(request.getFracBits())
                .setShare(ByteString.copyFrom(RingWords.toBytes(share, 64)))
                .build();
          };
      fakes.add(fake);
      servers.add(NettyServers.start(fake, null, NettyServers.requireToken("client-7", TOKEN)));
    }
  }

  @AfterEach
  void stop() {
    servers.forEach(Server::shutdownNow);
  }

  private String serverList() {
    return NettyServers.address(servers.get(0)) + "," + NettyServers.address(servers.get(1));
  }

  private Path file(String name, String text) throws IOException {
    return CliRun.file(dir, name, text);
  }

  private String[] aggregate(String token, Path update, String... extra) {
    List<String> args =
        new ArrayList<>(
            Arrays.asList(
                "aggregate", "--servers", serverList(), "--identities", "party-0,party-1",
                "--plaintext", "--client-id", "client-7", "--token", token,
                "--update", update.toString(), "--after", "1", "--timeout", "10",
                "--connect-timeout", "2"));
    args.addAll(Arrays.asList(extra));
    return args.toArray(new String[0]);
  }

  @Test
  void aggregatePrintsOneJsonLine() throws IOException {
    CliRun result = CliRun.run(aggregate(TOKEN, file("u.json", "[0.5, -0.25, 1.5, 0]")));
    assertEquals(0, result.code, result.err);
    assertEquals("", result.err);
    String[] lines = result.out.trim().split("\n");
    assertEquals(1, lines.length);
    Map<?, ?> report = (Map<?, ?>) Json.parse(lines[0]);
    assertEquals(2.0, report.get("round"));
    List<?> bytes = (List<?>) report.get("bytes");
    int b0 = fakes.get(0).submits.get(0).getSerializedSize();
    int b1 = fakes.get(1).submits.get(0).getSerializedSize();
    assertEquals(Arrays.asList((double) b0, (double) b1), bytes);
    assertEquals((double) (b0 + b1), report.get("total"));
    assertEquals("client-7", fakes.get(0).headers.get(0).get(TokenCredentials.CLIENT_ID_KEY));
    assertFalse(result.out.contains(TOKEN));
  }

  @Test
  void aTokenFileWorksLikeTheOption() throws IOException {
    Path update = file("u.txt", "0.5\n-0.25\n1.5\n0\n");
    Path token = file("token", TOKEN + "\n");
    String[] args = aggregate(TOKEN, update);
    List<String> list = new ArrayList<>(Arrays.asList(args));
    int at = list.indexOf("--token");
    list.set(at, "--token-file");
    list.set(at + 1, token.toString());
    CliRun result = CliRun.run(list.toArray(new String[0]));
    assertEquals(0, result.code, result.err);
  }

  @Test
  void refusalsPassThroughWithExitCode2() throws IOException {
    CliRun forged = CliRun.run(aggregate("v2.4102444800.ffffffff", file("u.json", "[0, 0, 0, 0]")));
    assertEquals(2, forged.code);
    assertEquals(
        "refused: unauthenticated: invalid client token (wrong client or job, expired, or forged)\n",
        forged.err);
    assertEquals("", forged.out);
    assertFalse(forged.err.contains("ffffffff"));

    CliRun wrong = CliRun.run(aggregate(TOKEN, file("w.json", "[0, 0, 0, 0, 0]")));
    assertEquals(2, wrong.code);
    assertEquals("refused: invalid: num_elements is 5, this job expects 4\n", wrong.err);
  }

  @Test
  void otherErrorsExitWith1() throws IOException {
    CliRun nan = CliRun.run(aggregate(TOKEN, file("n.txt", "0\nNaN\n0\n0\n")));
    assertEquals(1, nan.code);
    assertEquals("error: the update x contains NaN or infinity\n", nan.err);

    CliRun missing = CliRun.run(aggregate(TOKEN, dir.resolve("absent.json")));
    assertEquals(1, missing.code);
    assertTrue(missing.err.startsWith("error: cannot read "), missing.err);

    CliRun twice = CliRun.run(aggregate(TOKEN, file("u.json", "[0, 0, 0, 0]"), "--after", "2"));
    assertEquals(1, twice.code);
    assertTrue(twice.err.contains("--after given twice"), twice.err);

    CliRun usage = CliRun.run();
    assertEquals(1, usage.code);
    assertTrue(usage.err.startsWith("usage:"));
    assertEquals(1, CliRun.run("aggregate", "--bogus", "1").code);
    assertEquals(1, CliRun.run("launch").code);
    CliRun both =
        CliRun.run(
            "infer", "--servers", serverList(), "--plaintext", "--ca", "x", "--model", "m",
            "--shape", "1", "--input", file("x.json", "[1]").toString());
    assertEquals(1, both.code);
    assertTrue(both.err.contains("either --ca/--cert/--key (mutual TLS) or --plaintext"), both.err);
  }

  @Test
  void aFinishedJobIsAnError() throws IOException {
    for (int i = 0; i < 2; i++) {
      int index = i;
      fakes.get(i).roundInfo = (request, call) -> FakeEdge.round(2, "finished", index, 2).build();
    }
    CliRun result = CliRun.run(aggregate(TOKEN, file("u.json", "[0, 0, 0, 0]")));
    assertEquals(1, result.code);
    assertEquals("error: the job is finished; no round after 1 will open\n", result.err);
  }

  @Test
  void inferPrintsTheDecodedOutput() throws IOException {
    CliRun result =
        CliRun.run(
            "infer", "--servers", serverList(), "--plaintext", "--client-id", "client-7",
            "--token", TOKEN, "--model", "mlp", "--shape", "1,3",
            "--input", file("x.json", "[0.5, -1.25, 3]").toString(), "--frac-bits", "16");
    assertEquals(0, result.code, result.err);
    Map<?, ?> doc = (Map<?, ?>) Json.parse(result.out.trim());
    assertEquals(Arrays.asList(0.5, -1.25, 3.0), doc.get("output"));
  }
}
