package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Server;
import io.grpc.Status;
import java.io.IOException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@code secagg} command against a real (plaintext, token-checking) grpc-netty server. */
class CliSecAggTest {
  private static final String TOKEN = "v2.4102444800.0123abcd";
  private static final int M = 6;

  @TempDir Path dir;
  private Server server;
  private final ExecutorService pool = Executors.newFixedThreadPool(4);

  @AfterEach
  void stop() {
    pool.shutdownNow();
    if (server != null) {
      server.shutdownNow();
    }
  }

  private String start(FakeEdge fake) throws IOException {
    server = NettyServers.start(fake, null, NettyServers.requireToken("client-7", TOKEN));
    return NettyServers.address(server);
  }

  private Path file(String name, String text) throws IOException {
    return CliRun.file(dir, name, text);
  }

  private String[] secagg(String address, Path update, String... extra) {
    List<String> args =
        new ArrayList<>(
            Arrays.asList(
                "secagg", "--server", address, "--identity", "party-0", "--plaintext",
                "--client-id", "client-7", "--token", TOKEN, "--update", update.toString(),
                "--after", "0", "--timeout", "20", "--connect-timeout", "2"));
    args.addAll(Arrays.asList(extra));
    return args.toArray(new String[0]);
  }

  private static double[] update(int seed) {
    java.util.Random rng = new java.util.Random(seed);
    double[] x = new double[M];
    for (int i = 0; i < M; i++) {
      x[i] = rng.nextDouble() * 2 - 1;
    }
    return x;
  }

  private static String json(double[] x) {
    StringBuilder out = new StringBuilder("[");
    for (int i = 0; i < x.length; i++) {
      out.append(i == 0 ? "" : ", ").append(x[i]);
    }
    return out.append(']').toString();
  }

  /** Three in-JVM clients (client-0..2) run the round on direct links. */
  private List<Future<SecAggReport>> others(FakeSecAggServer round, List<double[]> updates) {
    List<Future<SecAggReport>> runs = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      double[] x = update(i);
      updates.add(x);
      SecAggClient c = new SecAggClient(round.link("client-" + i), new SecureRandom(), 5);
      runs.add(pool.submit(() -> c.runRound(x, c.waitForRound(0, 20_000), 20_000)));
    }
    return runs;
  }

  private static long[] ringSum(List<double[]> updates) {
    long[] total = new long[M];
    for (double[] x : updates) {
      long[] ring = UpdateEncoder.encode(x, QuantSpec.of("int16", 1.0), 32);
      for (int i = 0; i < M; i++) {
        total[i] = RingWords.reduce(total[i] + ring[i], 32);
      }
    }
    return total;
  }

  @Test
  void aRoundPrintsOneJsonLine() throws Exception {
    FakeSecAggServer round = new FakeSecAggServer("job-c", 1, M, 4, 2);
    FakeEdge fake = new FakeEdge();
    round.serve(fake, "client-7");
    String address = start(fake);
    List<double[]> updates = new ArrayList<>();
    List<Future<SecAggReport>> runs = others(round, updates);
    double[] mine = update(7);
    updates.add(mine);
    CliRun result = CliRun.run(secagg(address, file("u.json", json(mine))));
    assertEquals(0, result.code, result.err);
    assertEquals("", result.err);
    String[] lines = result.out.trim().split("\n");
    assertEquals(1, lines.length);
    Map<?, ?> line = (Map<?, ?>) Json.parse(lines[0]);
    assertEquals(
        Arrays.asList("round", "index", "neighbours", "upload", "masked", "download", "complaints"),
        new ArrayList<>(line.keySet()));
    assertEquals(1.0, line.get("round"));
    assertEquals(4.0, line.get("index")); // client-7 sorts after client-0..2
    assertEquals(3.0, line.get("neighbours"));
    assertEquals(new ArrayList<>(), line.get("complaints"));
    double masked = (Double) line.get("masked");
    assertTrue(masked >= M * 4, "masked " + masked);
    assertTrue((Double) line.get("upload") > masked);
    assertTrue((Double) line.get("download") > 0);
    for (Future<SecAggReport> run : runs) {
      assertEquals(SecAggStage.DONE, run.get(30, TimeUnit.SECONDS).stage());
    }
    assertEquals(TestVectors.unsigned(ringSum(updates)), TestVectors.unsigned(round.aggregate()));
    assertFalse(result.out.contains(TOKEN));
  }

  @Test
  void aClientDroppingAfterSharingKeysLeavesTheOthersARound() throws Exception {
    FakeSecAggServer round = new FakeSecAggServer("job-d", 1, M, 4, 2);
    FakeEdge fake = new FakeEdge();
    round.serve(fake, "client-7");
    String address = start(fake);
    List<double[]> updates = new ArrayList<>();
    List<Future<SecAggReport>> runs = others(round, updates);
    CliRun result =
        CliRun.run(secagg(address, file("u.json", json(update(7))), "--drop-after-share-keys"));
    assertEquals(0, result.code, result.err);
    assertEquals("{\"round\": 1, \"dropped\": true}\n", result.out);
    assertTrue(round.member("client-7").commitment != null);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!(round.member("client-0").masked && round.member("client-1").masked
        && round.member("client-2").masked)) {
      assertTrue(System.nanoTime() < deadline, "the others did not upload");
      Thread.sleep(5);
    }
    round.close(); // masked input: client-7 never comes
    for (Future<SecAggReport> run : runs) {
      assertEquals(SecAggStage.DONE, run.get(30, TimeUnit.SECONDS).stage());
    }
    assertFalse(round.member("client-7").masked);
    assertEquals(TestVectors.unsigned(ringSum(updates)), TestVectors.unsigned(round.aggregate()));
  }

  @Test
  void aFailedRoundExitsWith3AndTheReason() throws Exception {
    FakeSecAggServer round = new FakeSecAggServer("job-f", 1, M, 4, 2);
    FakeEdge fake = new FakeEdge();
    round.serve(fake, "client-7");
    String address = start(fake);
    round.autoClose = false;
    pool.submit(
        () -> {
          long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
          while (round.member("client-7") == null && System.nanoTime() < deadline) {
            Thread.sleep(5);
          }
          round.fail("only 1 client(s) advertised keys, the round needs 3");
          return null;
        });
    CliRun result = CliRun.run(secagg(address, file("u.json", json(update(1)))));
    assertEquals(3, result.code, result.err);
    assertEquals("round failed: only 1 client(s) advertised keys, the round needs 3\n", result.err);
    assertEquals("", result.out);
  }

  @Test
  void aRefusalExitsWith2() throws Exception {
    FakeSecAggServer round = new FakeSecAggServer("job-r", 1, M, 4, 2);
    FakeEdge fake = new FakeEdge();
    round.serve(fake, "client-7");
    fake.advertise =
        (request, call) -> { throw FakeEdge.refuse(Status.ALREADY_EXISTS, "a public key another client already advertised"); };
    String address = start(fake);
    CliRun result = CliRun.run(secagg(address, file("u.json", json(update(1)))));
    assertEquals(2, result.code, result.err);
    assertEquals("refused: duplicate: a public key another client already advertised\n", result.err);

    CliRun forged = CliRun.run(secagg(address, file("u.json", json(update(1))), "--token", "x"));
    assertEquals(1, forged.code); // --token given twice
    assertTrue(forged.err.contains("--token given twice"), forged.err);
  }

  @Test
  void aMultiServerJobOrAWrongUpdateIsAnError() throws Exception {
    FakeEdge fake = new FakeEdge();
    fake.roundInfo = (request, call) -> FakeEdge.round(1, "open", 0, 2).build();
    String address = start(fake);
    CliRun multi = CliRun.run(secagg(address, file("u.json", "[0, 0, 0, 0]")));
    assertEquals(1, multi.code);
    assertEquals(
        "error: the job is shared among 2 servers; secagg needs a single-server job (use the"
            + " aggregate command)\n",
        multi.err);
    fake.roundInfo = (request, call) -> FakeEdge.round(1, "open", 0, 1).build();
    CliRun length = CliRun.run(secagg(address, file("w.json", "[0, 0, 0]")));
    assertEquals(1, length.code);
    assertEquals("error: the update has 3 values; round 1 expects 4\n", length.err);
    CliRun nan = CliRun.run(secagg(address, file("n.txt", "0\nNaN\n0\n0\n")));
    assertEquals(1, nan.code);
    assertEquals("error: the update x contains NaN or infinity\n", nan.err);
    assertEquals(0, fake.secAggCalls.get()); // nothing was sent
    fake.roundInfo = (request, call) -> FakeEdge.round(1, "finished", 0, 1).build();
    CliRun finished = CliRun.run(secagg(address, file("u.json", "[0, 0, 0, 0]")));
    assertEquals(1, finished.code);
    assertEquals("error: the job is finished; no round after 0 will open\n", finished.err);
  }

  @Test
  void usageErrorsExitWith1() throws IOException {
    Path u = file("u.json", "[0]");
    CliRun two = CliRun.run("secagg", "--server", "127.0.0.1:1,127.0.0.1:2", "--plaintext", "--client-id", "c",
        "--token", "t", "--update", u.toString());
    assertEquals(1, two.code);
    assertTrue(two.err.startsWith("error: --server takes one H:P"), two.err);
    CliRun servers = CliRun.run("secagg", "--servers", "127.0.0.1:1", "--update", u.toString());
    assertEquals(1, servers.code);
    assertTrue(servers.err.startsWith("error: unknown option '--servers'"), servers.err);
    CliRun drop = CliRun.run("aggregate", "--drop-after-share-keys");
    assertEquals(1, drop.code);
    assertTrue(drop.err.startsWith("error: unknown option '--drop-after-share-keys'"), drop.err);
    CliRun usage = CliRun.run("--help");
    assertTrue(usage.err.contains("secagg    --server H:P [--identity party-0] AUTH --update FILE"), usage.err);
  }
}
