package io.cryptenlite.edge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/** Every known-answer vector of tests/vectors/edge_client.json, reproduced exactly. */
class VectorsTest {
  @Test
  void theVectorFileHasEverySection() throws IOException {
    Map<String, Object> doc = TestVectors.load();
    for (String name :
        new String[] {"seed_expansion", "encode", "split", "fixed_point", "pack_weighted"}) {
      assertFalse(((List<?>) doc.get(name)).isEmpty(), name);
    }
  }

  @TestFactory
  List<DynamicTest> seedExpansion() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    for (Map<String, Object> v : TestVectors.section("seed_expansion")) {
      byte[] seed = TestVectors.hex((String) v.get("seed"));
      int n = TestVectors.integer(v.get("num_elements"));
      int bits = TestVectors.integer(v.get("ring_bits"));
      long[] expected = TestVectors.words(v.get("words"));
      String name = "expand " + ((String) v.get("seed")).substring(0, 8) + " n=" + n + " bits=" + bits;
      tests.add(
          DynamicTest.dynamicTest(
              name,
              () ->
                  assertEquals(
                      TestVectors.unsigned(expected),
                      TestVectors.unsigned(SeedExpander.expand(seed, n, bits)))));
    }
    return tests;
  }

  @TestFactory
  List<DynamicTest> encode() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    for (Map<String, Object> v : TestVectors.section("encode")) {
      String scheme = (String) v.get("scheme");
      double clip = (Double) v.get("clip");
      int bits = TestVectors.integer(v.get("ring_bits"));
      double[] x = TestVectors.doubles(v.get("x"));
      long[] expected = TestVectors.words(v.get("words"));
      tests.add(
          DynamicTest.dynamicTest(
              "encode " + scheme + " clip=" + clip + " bits=" + bits,
              () -> {
                long[] got = UpdateEncoder.encode(x, QuantSpec.of(scheme, clip), bits);
                assertEquals(TestVectors.unsigned(expected), TestVectors.unsigned(got));
              }));
    }
    return tests;
  }

  @TestFactory
  List<DynamicTest> split() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    for (Map<String, Object> v : TestVectors.section("split")) {
      int bits = TestVectors.integer(v.get("ring_bits"));
      long[] values = TestVectors.words(v.get("values"));
      long[] masked = TestVectors.words(v.get("masked"));
      List<byte[]> seeds = new ArrayList<>();
      for (Object seed : (List<?>) v.get("seeds")) {
        seeds.add(TestVectors.hex((String) seed));
      }
      tests.add(
          DynamicTest.dynamicTest(
              "split bits=" + bits + " k=" + (seeds.size() + 1),
              () -> {
                SeedSplit split = SeedSplit.withSeeds(values, seeds, bits);
                assertEquals(seeds.size() + 1, split.numServers());
                assertEquals(TestVectors.unsigned(masked), TestVectors.unsigned(split.masked()));
                for (int i = 0; i < seeds.size(); i++) {
                  assertArrayEquals(seeds.get(i), split.seed(i));
                }
              }));
    }
    return tests;
  }

  @TestFactory
  List<DynamicTest> fixedPoint() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    for (Map<String, Object> v : TestVectors.section("fixed_point")) {
      int fracBits = TestVectors.integer(v.get("frac_bits"));
      double[] x = TestVectors.doubles(v.get("x"));
      long[] expected = TestVectors.words(v.get("words"));
      tests.add(
          DynamicTest.dynamicTest(
              "fixed point frac_bits=" + fracBits,
              () ->
                  assertEquals(
                      TestVectors.unsigned(expected),
                      TestVectors.unsigned(FixedPoint.encode(x, fracBits)))));
    }
    return tests;
  }

  @TestFactory
  List<DynamicTest> packWeighted() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    for (Map<String, Object> v : TestVectors.section("pack_weighted")) {
      double[] delta = TestVectors.doubles(v.get("delta"));
      double weight = (Double) v.get("weight");
      double[] packed = TestVectors.doubles(v.get("packed"));
      tests.add(
          DynamicTest.dynamicTest(
              "pack weight=" + weight,
              () -> assertArrayEquals(packed, WeightedUpdate.pack(delta, weight), 0.0)));
    }
    return tests;
  }
}
