package io.cryptenlite.edge;

/**
 * A sealed pair of Shamir shares (self-mask seed, mask key) from client {@code sender} to
 * client {@code receiver}: {@code nonce(12) || AES-256-GCM ciphertext || tag}, {@link
 * SecAggCrypto#SEALED_SIZE} bytes; only the receiver can open it. {@code toString()} shows the
 * indices only.
 */
public final class EncryptedShare {
  private final long sender;
  private final long receiver;
  private final byte[] sealed;

  public EncryptedShare(long sender, long receiver, byte[] sealed) {
    this.sender = sender;
    this.receiver = receiver;
    this.sealed = sealed.clone();
  }

  public long sender() {
    return sender;
  }

  public long receiver() {
    return receiver;
  }

  public byte[] sealed() {
    return sealed.clone();
  }

  @Override
  public String toString() {
    return "EncryptedShare(" + sender + " -> " + receiver + ", <sealed>)";
  }
}
