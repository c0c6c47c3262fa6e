package io.cryptenlite.edge;

/**
 * A neighbour in a SecAgg round (public): its round index (1..n, its Shamir x-coordinate) and
 * its two X25519 public keys, {@code cipherPublic} (share encryption) and {@code maskPublic}
 * (pairwise masks), 32 bytes each.
 */
public final class NeighbourKey {
  private final long index;
  private final byte[] cipherPublic;
  private final byte[] maskPublic;

  public NeighbourKey(long index, byte[] cipherPublic, byte[] maskPublic) {
    this.index = index;
    this.cipherPublic = cipherPublic.clone();
    this.maskPublic = maskPublic.clone();
  }

  public long index() {
    return index;
  }

  public byte[] cipherPublic() {
    return cipherPublic.clone();
  }

  public byte[] maskPublic() {
    return maskPublic.clone();
  }

  @Override
  public String toString() {
    return "NeighbourKey(" + index + ")";
  }
}
