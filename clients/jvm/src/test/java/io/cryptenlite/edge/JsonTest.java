package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {
  @Test
  void parsesDocuments() {
    Object doc = Json.parse(" {\"a\": [1, -2.5e-3, true, null, \"x\\n\\u0041\"], \"b\": {}} ");
    Map<?, ?> map = (Map<?, ?>) doc;
    assertEquals(Arrays.asList(1.0, -2.5e-3, true, null, "x\nA"), map.get("a"));
    assertTrue(((Map<?, ?>) map.get("b")).isEmpty());
    assertEquals(List.of(), Json.parse("[]"));
  }

  @Test
  void refusesMalformedJson() {
    for (String bad : new String[] {"[1,]", "[01]", "{\"a\" 1}", "[1] x", "[NaN]", "\"open", "[.5]"}) {
      assertThrows(IllegalArgumentException.class, () -> Json.parse(bad), bad);
    }
  }

  @Test
  void readsNumbersFromAnArrayOrLines() {
    assertArrayEquals(new double[] {0.5, -1.0, 1e-9}, Json.numbers("[0.5, -1, 1e-9]\n"), 0.0);
    assertArrayEquals(new double[] {0.5, -1.0, 3.0}, Json.numbers("0.5\n\n -1 \r\n3\n"), 0.0);
    double[] special = Json.numbers("NaN\nInfinity\n");
    assertTrue(Double.isNaN(special[0]) && Double.isInfinite(special[1]));
    assertThrows(IllegalArgumentException.class, () -> Json.numbers("1\nabc\n"));
    assertThrows(IllegalArgumentException.class, () -> Json.numbers("[1, \"2\"]"));
  }

  @Test
  void formatsNumbersThatReadBackExactly() {
    for (double v : new double[] {0.0, 3.0, -2.75, 0.1, 1e-5, 123456789.125, 1e300, -1e-300}) {
      assertEquals(v, (Double) Json.parse(Json.number(v)));
    }
    assertEquals("3.0", Json.number(3.0));
    assertThrows(IllegalArgumentException.class, () -> Json.number(Double.NaN));
  }
}
