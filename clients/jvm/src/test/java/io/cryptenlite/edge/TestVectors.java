package io.cryptenlite.edge;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.Map;

/** tests/vectors/edge_client.json (written by tests/vectors/make_edge_client.py). */
final class TestVectors {
  private TestVectors() {}

  static Path path() {
    String configured = System.getProperty("cryptenlite.vectors");
    return configured != null
        ? Paths.get(configured)
        : Paths.get("..", "..", "tests", "vectors", "edge_client.json");
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> load() throws IOException {
    String text = new String(Files.readAllBytes(path()), StandardCharsets.UTF_8);
    return (Map<String, Object>) Json.parse(text);
  }

  @SuppressWarnings("unchecked")
  static List<Map<String, Object>> section(String name) throws IOException {
    return (List<Map<String, Object>>) load().get(name);
  }

  /** Decimal strings of unsigned words. */
  static long[] words(Object list) {
    List<?> items = (List<?>) list;
    long[] out = new long[items.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = Long.parseUnsignedLong((String) items.get(i));
    }
    return out;
  }

  static double[] doubles(Object list) {
    List<?> items = (List<?>) list;
    double[] out = new double[items.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (Double) items.get(i);
    }
    return out;
  }

  static byte[] hex(String text) {
    byte[] out = new byte[text.length() / 2];
    for (int i = 0; i < out.length; i++) {
      out[i] = (byte) Integer.parseInt(text.substring(2 * i, 2 * i + 2), 16);
    }
    return out;
  }

  static int integer(Object value) {
    return ((Double) value).intValue();
  }

  static String unsigned(long[] words) {
    StringBuilder out = new StringBuilder("[");
    for (int i = 0; i < words.length; i++) {
      out.append(i == 0 ? "" : ", ").append(Long.toUnsignedString(words[i]));
    }
    return out.append(']').toString();
  }
}
