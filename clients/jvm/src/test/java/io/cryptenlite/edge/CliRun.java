package io.cryptenlite.edge;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Runs {@link Cli} in this JVM and captures what it prints (shared by the CLI tests). */
final class CliRun {
  final int code;
  final String out;
  final String err;

  private CliRun(int code, String out, String err) {
    this.code = code;
    this.out = out;
    this.err = err;
  }

  /** {@code Cli.run(args)} with stdout and stderr captured. */
  static CliRun run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        Cli.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new CliRun(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  /** Writes {@code text} to {@code dir/name}. */
  static Path file(Path dir, String name, String text) throws IOException {
    Path path = dir.resolve(name);
    Files.write(path, text.getBytes(StandardCharsets.UTF_8));
    return path;
  }
}
