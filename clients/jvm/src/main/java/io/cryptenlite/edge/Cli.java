package io.cryptenlite.edge;

import io.grpc.CallCredentials;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Command line of the JVM edge client (run through {@code clients/jvm/run.sh}).
 *
 * <pre>
 * aggregate --servers H:P,H:P [--identities party-0,party-1] AUTH --update FILE
 *           [--after R] [--timeout S] [--call-timeout S] [--connect-timeout S]
 * infer     --servers H:P,H:P [--identities party-0,party-1] AUTH --model NAME
 *           --shape D1,D2,.. --input FILE [--frac-bits P] [--call-timeout S] [--connect-timeout S]
 * secagg    --server H:P [--identity party-0] AUTH --update FILE [--after R] [--timeout S]
 *           [--drop-after-share-keys] [--call-timeout S] [--connect-timeout S]
 * AUTH = --ca FILE --cert FILE --key FILE                        (mutual TLS)
 *      | --plaintext --client-id ID (--token T | --token-file F)  (operator token)
 * </pre>
 *
 * <p>Success: one JSON line on stdout, exit 0 ({@code {"round": r, "bytes": [..], "total": t}},
 * {@code {"output": [..]}}, or for {@code secagg} {@code {"round": r, "index": i, "neighbours":
 * d, "upload": b, "masked": b, "download": b, "complaints": [..]}}, with {@code
 * --drop-after-share-keys} {@code {"round": r, "dropped": true}}). A server's refusal: {@code
 * refused: <kind>: <server message>} on stderr, exit 2. A SecAgg round that failed (or went on
 * without this client): {@code round failed: <reason>} on stderr, exit 3. Anything else: {@code
 * error: <message>} on stderr, exit 1. The update, the input, seeds, shares, keys and the token
 * are never printed.
 */
public final class Cli {
  static final String USAGE =
      "usage:\n"
          + "  aggregate --servers H:P,H:P [--identities party-0,party-1] AUTH --update FILE\n"
          + "            [--after R] [--timeout S] [--call-timeout S] [--connect-timeout S]\n"
          + "  infer     --servers H:P,H:P [--identities party-0,party-1] AUTH --model NAME\n"
          + "            --shape D1,D2 --input FILE [--frac-bits P] [--call-timeout S]"
          + " [--connect-timeout S]\n"
          + "  secagg    --server H:P [--identity party-0] AUTH --update FILE [--after R]\n"
          + "            [--timeout S] [--drop-after-share-keys] [--call-timeout S]"
          + " [--connect-timeout S]\n"
          + "  AUTH = --ca FILE --cert FILE --key FILE\n"
          + "       | --plaintext --client-id ID (--token T | --token-file FILE)\n"
          + "  FILE of numbers: a JSON array, or one number per line\n";

  private static final Set<String> FLAGS =
      new HashSet<>(Arrays.asList("--plaintext", "--drop-after-share-keys"));
  private static final Set<String> COMMON =
      new HashSet<>(
          Arrays.asList(
              "--ca", "--cert", "--key", "--plaintext", "--client-id", "--token", "--token-file",
              "--call-timeout", "--connect-timeout"));
  private static final Set<String> SERVERS =
      new HashSet<>(Arrays.asList("--servers", "--identities"));
  private static final Set<String> AGGREGATE =
      new HashSet<>(Arrays.asList("--update", "--after", "--timeout"));
  private static final Set<String> INFER =
      new HashSet<>(Arrays.asList("--model", "--shape", "--input", "--frac-bits"));
  private static final Set<String> SECAGG =
      new HashSet<>(
          Arrays.asList(
              "--server", "--identity", "--update", "--after", "--timeout",
              "--drop-after-share-keys"));

  private Cli() {}

  public static void main(String[] args) {
    int code = run(args, System.out, System.err);
    System.out.flush();
    System.err.flush();
    System.exit(code);
  }

  /** Runs one command; returns the exit code (0, 1, 2 or 3). */
  static int run(String[] args, PrintStream out, PrintStream err) {
    try {
      if (args.length == 0 || args[0].equals("-h") || args[0].equals("--help")) {
        err.print(USAGE);
        return args.length == 0 ? 1 : 0;
      }
      String command = args[0];
      Set<String> allowed = new HashSet<>(COMMON);
      if (command.equals("aggregate")) {
        allowed.addAll(SERVERS);
        allowed.addAll(AGGREGATE);
      } else if (command.equals("infer")) {
        allowed.addAll(SERVERS);
        allowed.addAll(INFER);
      } else if (command.equals("secagg")) {
        allowed.addAll(SECAGG);
      } else {
        throw new UsageException("unknown command '" + Text.clean(command, 40) + "'");
      }
      Map<String, String> options = parse(Arrays.copyOfRange(args, 1, args.length), allowed);
      if (command.equals("secagg")) {
        double[] update = Json.numbers(read(required(options, "--update")));
        long after = longOption(options, "--after", -1);
        long timeout = millis(options, "--timeout", 120);
        String server = required(options, "--server");
        if (list(server).size() != 1) {
          throw new UsageException("--server takes one H:P (single-server secure aggregation)");
        }
        String identity =
            options.containsKey("--identity") ? required(options, "--identity") : "party-0";
        boolean drop = options.containsKey("--drop-after-share-keys");
        try {
          SecAggCrypto.checkAvailable(); // say so before joining a round
        } catch (IllegalStateException missing) {
          err.println("error: " + missing.getMessage());
          return 1;
        }
        Transport transport = transport(options);
        try (SecAggClient client =
            SecAggClient.connect(
                server.trim(), identity, transport.factory, transport.credentials,
                transport.link)) {
          return secagg(client, update, after, timeout, drop, out, err);
        }
      }
      if (command.equals("aggregate")) {
        // inputs are read and checked before any connection is opened
        double[] update = Json.numbers(read(required(options, "--update")));
        long after = longOption(options, "--after", -1);
        long timeout = millis(options, "--timeout", 60);
        try (EdgeClient client = connect(options)) {
          return aggregate(client, update, after, timeout, out, err);
        }
      }
      String model = required(options, "--model");
      long[] shape = shape(required(options, "--shape"));
      double[] input = Json.numbers(read(required(options, "--input")));
      long fracBits = longOption(options, "--frac-bits", 16);
      if (fracBits < 0 || fracBits > FixedPoint.MAX_FRAC_BITS) {
        throw new UsageException("--frac-bits must lie in [0, " + FixedPoint.MAX_FRAC_BITS + "]");
      }
      try (EdgeClient client = connect(options)) {
        return infer(client, model, shape, input, (int) fracBits, out);
      }
    } catch (EdgeRefusalException refusal) {
      err.println("refused: " + refusal.refusal().wireName() + ": " + refusal.detail());
      return 2;
    } catch (SecAggRoundFailedException failed) {
      err.println("round failed: " + failed.reason());
      return 3;
    } catch (UsageException usage) {
      err.println("error: " + usage.getMessage());
      err.print(USAGE);
      return 1;
    } catch (EdgeException | EncodingException | IOException | GeneralSecurityException failure) {
      err.println("error: " + failure.getMessage());
      return 1;
    } catch (IllegalArgumentException failure) {
      err.println("error: " + failure.getMessage());
      return 1;
    } catch (RuntimeException failure) {
      err.println("error: " + failure.getClass().getSimpleName() + ": " + failure.getMessage());
      return 1;
    }
  }

  private static int aggregate(
      EdgeClient client, double[] update, long after, long timeout, PrintStream out,
      PrintStream err) throws EdgeException {
    RoundInfo info = client.waitForRound(after, timeout);
    if (info.state() == RoundState.FINISHED) {
      err.println("error: the job is finished; no round after " + after + " will open");
      return 1;
    }
    // the servers judge the length: a wrong-length file gets their INVALID refusal verbatim
    UploadReport report = client.submitUpdate(update, info, false);
    StringBuilder line = new StringBuilder("{\"round\": ").append(report.round()).append(", \"bytes\": [");
    int[] bytes = report.bytesPerServer();
    for (int i = 0; i < bytes.length; i++) {
      line.append(i == 0 ? "" : ", ").append(bytes[i]);
    }
    line.append("], \"total\": ").append(report.totalBytes()).append('}');
    out.println(line);
    return 0;
  }

  private static int secagg(
      SecAggClient client, double[] update, long after, long timeout, boolean drop,
      PrintStream out, PrintStream err) throws EdgeException {
    RoundInfo info = client.waitForRound(after, timeout);
    if (info.state() == RoundState.FINISHED) {
      err.println("error: the job is finished; no round after " + after + " will open");
      return 1;
    }
    if (info.numServers() != 1) {
      err.println(
          "error: the job is shared among " + info.numServers() + " servers; secagg needs a"
              + " single-server job (use the aggregate command)");
      return 1;
    }
    if (update.length != info.numElements()) { // checked before joining the round
      err.println(
          "error: the update has " + update.length + " values; round " + info.round()
              + " expects " + info.numElements());
      return 1;
    }
    if (drop) { // advertise and share keys, then leave: the server rebuilds this mask key
      Arrays.fill(UpdateEncoder.encode(update, info.quant(), info.ringBits()), 0);
      client.advertise(info);
      client.shareKeys(client.waitForStage(info.round(), SecAggStage.SHARE_KEYS, timeout));
      out.println("{\"round\": " + info.round() + ", \"dropped\": true}");
      return 0;
    }
    SecAggReport report = client.runRound(update, info, timeout);
    StringBuilder line =
        new StringBuilder("{\"round\": ").append(report.round())
            .append(", \"index\": ").append(report.index())
            .append(", \"neighbours\": ").append(report.neighbours())
            .append(", \"upload\": ").append(report.uploadBytes())
            .append(", \"masked\": ").append(report.maskedBytes())
            .append(", \"download\": ").append(report.downloadBytes())
            .append(", \"complaints\": [");
    long[] complaints = report.complaints();
    for (int i = 0; i < complaints.length; i++) {
      line.append(i == 0 ? "" : ", ").append(complaints[i]);
    }
    out.println(line.append("]}"));
    return 0;
  }

  private static int infer(
      EdgeClient client, String model, long[] shape, double[] input, int fracBits,
      PrintStream out) throws EdgeException {
    double[] output = client.infer(model, shape, input, fracBits);
    StringBuilder line = new StringBuilder("{\"output\": [");
    for (int i = 0; i < output.length; i++) {
      line.append(i == 0 ? "" : ", ").append(Json.number(output[i]));
    }
    out.println(line.append("]}"));
    return 0;
  }

  /** How to reach the servers: channels, call credentials, timeouts. */
  private static final class Transport {
    final ChannelFactory factory;
    final CallCredentials credentials;
    final LinkOptions link;

    Transport(ChannelFactory factory, CallCredentials credentials, LinkOptions link) {
      this.factory = factory;
      this.credentials = credentials;
      this.link = link;
    }
  }

  private static EdgeClient connect(Map<String, String> options)
      throws IOException, GeneralSecurityException {
    List<String> servers = list(required(options, "--servers"));
    List<String> identities =
        options.containsKey("--identities") ? list(options.get("--identities")) : null;
    if (identities != null && identities.size() != servers.size()) {
      throw new UsageException(
          servers.size() + " servers but " + identities.size() + " identities");
    }
    if (servers.size() < 2 || servers.size() > SeedSplit.MAX_SERVERS) {
      throw new UsageException("--servers must name 2 to " + SeedSplit.MAX_SERVERS + " servers");
    }
    Transport transport = transport(options);
    return EdgeClient.connect(
        servers, identities, transport.factory, transport.credentials, transport.link);
  }

  private static Transport transport(Map<String, String> options)
      throws IOException, GeneralSecurityException {
    LinkOptions link =
        LinkOptions.defaults()
            .withCallTimeoutMillis(millis(options, "--call-timeout", 30))
            .withConnectTimeoutMillis(millis(options, "--connect-timeout", 30));
    boolean tls = options.containsKey("--ca") || options.containsKey("--cert")
        || options.containsKey("--key");
    boolean plaintext = options.containsKey("--plaintext");
    if (tls == plaintext) {
      throw new UsageException("give either --ca/--cert/--key (mutual TLS) or --plaintext");
    }
    ChannelFactory factory;
    CallCredentials credentials = null;
    if (tls) {
      File ca = new File(required(options, "--ca"));
      File cert = new File(required(options, "--cert"));
      File key = new File(required(options, "--key"));
      try {
        factory = NettyChannelFactory.mutualTls(ca, cert, key);
      } catch (IOException err) {
        throw new IOException("cannot read the TLS files: " + err.getMessage());
      } catch (GeneralSecurityException err) {
        throw new GeneralSecurityException("cannot use the TLS files: " + err.getMessage());
      }
    } else {
      String token;
      if (options.containsKey("--token") == options.containsKey("--token-file")) {
        throw new UsageException("--plaintext needs one of --token or --token-file");
      }
      token = options.containsKey("--token")
          ? options.get("--token")
          : read(options.get("--token-file")).trim();
      credentials = new TokenCredentials(required(options, "--client-id"), token);
      factory = NettyChannelFactory.plaintext();
    }
    return new Transport(factory, credentials, link);
  }

  static Map<String, String> parse(String[] args, Set<String> allowed) {
    Map<String, String> options = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      String name = args[i];
      if (!allowed.contains(name)) {
        throw new UsageException("unknown option '" + Text.clean(name, 40) + "'");
      }
      if (options.containsKey(name)) {
        throw new UsageException(name + " given twice");
      }
      if (FLAGS.contains(name)) {
        options.put(name, "true");
        continue;
      }
      if (i + 1 >= args.length) {
        throw new UsageException(name + " needs a value");
      }
      options.put(name, args[++i]);
    }
    return options;
  }

  private static String required(Map<String, String> options, String name) {
    String value = options.get(name);
    if (value == null || value.isEmpty()) {
      throw new UsageException(name + " is required");
    }
    return value;
  }

  private static List<String> list(String text) {
    List<String> out = new ArrayList<>();
    for (String part : text.split(",")) {
      if (!part.trim().isEmpty()) {
        out.add(part.trim());
      }
    }
    return out;
  }

  private static long[] shape(String text) {
    List<String> parts = list(text);
    long[] dims = new long[parts.size()];
    for (int i = 0; i < dims.length; i++) {
      dims[i] = parseLong(parts.get(i), "--shape");
      if (dims[i] < 0) {
        throw new UsageException("--shape entries must be >= 0");
      }
    }
    return dims;
  }

  private static long longOption(Map<String, String> options, String name, long fallback) {
    return options.containsKey(name) ? parseLong(options.get(name), name) : fallback;
  }

  private static long millis(Map<String, String> options, String name, double fallbackSeconds) {
    double seconds = fallbackSeconds;
    if (options.containsKey(name)) {
      try {
        seconds = Double.parseDouble(options.get(name));
      } catch (NumberFormatException err) {
        throw new UsageException(name + " must be a number of seconds");
      }
    }
    if (!(seconds > 0) || Double.isInfinite(seconds)) {
      throw new UsageException(name + " must be a positive number of seconds");
    }
    return Math.max(1, Math.round(seconds * 1000));
  }

  private static long parseLong(String text, String name) {
    try {
      return Long.parseLong(text.trim());
    } catch (NumberFormatException err) {
      throw new UsageException(name + " must be an integer");
    }
  }

  private static String read(String path) throws IOException {
    try {
      return new String(Files.readAllBytes(new File(path).toPath()), StandardCharsets.UTF_8);
    } catch (java.nio.file.NoSuchFileException err) {
      throw new IOException("cannot read " + path + ": no such file");
    } catch (IOException err) {
      throw new IOException("cannot read " + path + ": " + err.getMessage());
    }
  }

  /** A malformed command line. */
  static final class UsageException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    UsageException(String message) {
      super(message);
    }
  }
}
