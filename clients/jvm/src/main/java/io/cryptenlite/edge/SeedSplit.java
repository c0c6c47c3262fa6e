package io.cryptenlite.edge;

import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Additive sharing of a ring vector among {@code k} servers with seed compression ({@code
 * crypten_lite.edge.shares.split_update}): servers {@code 0..k-2} each get a fresh 32-byte seed
 * (their share is {@link SeedExpander#expand} of it); server {@code k-1} gets the masked vector
 * {@code values - sum(expand(seed_i)) mod 2^ringBits}, which alone is uniformly random.
 *
 * <p>Secret: the seeds and the masked vector each go to exactly one server; no single server
 * learns anything about the values. {@link #toString()} never shows them.
 */
public final class SeedSplit {
  /** The most servers an update may be shared among. */
  public static final int MAX_SERVERS = 8;

  private final List<byte[]> seeds;
  private final long[] masked;
  private final int ringBits;

  private SeedSplit(List<byte[]> seeds, long[] masked, int ringBits) {
    this.seeds = seeds;
    this.masked = masked;
    this.ringBits = ringBits;
  }

  /** Shares {@code values} among {@code numServers} with seeds drawn from {@code random}. */
  public static SeedSplit split(
      long[] values, int numServers, int ringBits, SecureRandom random) {
    if (numServers < 2 || numServers > MAX_SERVERS) {
      throw new IllegalArgumentException(
          "num_servers must lie in [2, " + MAX_SERVERS + "], got " + numServers);
    }
    List<byte[]> seeds = new ArrayList<>(numServers - 1);
    for (int i = 0; i < numServers - 1; i++) {
      byte[] seed = new byte[SeedExpander.SEED_SIZE];
      random.nextBytes(seed);
      seeds.add(seed);
    }
    return withSeeds(values, seeds, ringBits);
  }

  /**
   * The split of {@code values} for the given seeds (deterministic: for tests and known-answer
   * vectors; real uploads use {@link #split}).
   */
  public static SeedSplit withSeeds(long[] values, List<byte[]> seeds, int ringBits) {
    RingWords.checkBits(ringBits);
    if (seeds.isEmpty() || seeds.size() > MAX_SERVERS - 1) {
      throw new IllegalArgumentException("need 1 to " + (MAX_SERVERS - 1) + " seeds");
    }
    long[] masked = values.clone();
    for (long value : masked) {
      if (RingWords.reduce(value, ringBits) != value) {
        throw new IllegalArgumentException("values must be elements of the " + ringBits + "-bit ring");
      }
    }
    List<byte[]> copies = new ArrayList<>(seeds.size());
    for (byte[] seed : seeds) {
      long[] stream = SeedExpander.expand(seed, masked.length, ringBits);
      for (int i = 0; i < masked.length; i++) {
        masked[i] = RingWords.reduce(masked[i] - stream[i], ringBits);
      }
      copies.add(seed.clone());
    }
    return new SeedSplit(Collections.unmodifiableList(copies), masked, ringBits);
  }

  /** The number of servers: seeds + 1. */
  public int numServers() {
    return seeds.size() + 1;
  }

  public int ringBits() {
    return ringBits;
  }

  /** Whether server {@code index} receives a seed (else the masked vector). */
  public boolean takesSeed(int index) {
    return index < seeds.size();
  }

  /** A copy of server {@code index}'s seed ({@code index < numServers() - 1}). */
  public byte[] seed(int index) {
    return seeds.get(index).clone();
  }

  /** A copy of the masked vector (for server {@code numServers() - 1}). */
  public long[] masked() {
    return masked.clone();
  }

  @Override
  public String toString() {
    return "SeedSplit(servers=" + numServers() + ", ring_bits=" + ringBits + ", <hidden>)";
  }
}
