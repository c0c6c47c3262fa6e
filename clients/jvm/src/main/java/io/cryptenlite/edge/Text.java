package io.cryptenlite.edge;

import java.util.Locale;

/** Making peer-supplied text safe to show, and numbers short to read. */
final class Text {
  private Text() {}

  /**
   * {@code text} as printable ASCII ({@code ?} for anything else), at most {@code limit}
   * characters: what the Python client does to a server's message ({@code wire.clean}).
   */
  static String clean(String text, int limit) {
    if (text == null) {
      return "";
    }
    int end = Math.min(text.length(), limit);
    StringBuilder out = new StringBuilder(end);
    for (int i = 0; i < end; i++) {
      char c = text.charAt(i);
      out.append(c >= 0x20 && c < 0x7F ? c : '?');
    }
    return out.toString();
  }

  /** A double the way Python's {@code :g} prints it, near enough for messages. */
  static String number(double value) {
    return String.format(Locale.ROOT, "%.6g", value).replaceAll("\\.?0+(e|$)", "$1");
  }
}
