package io.cryptenlite.edge;

/**
 * The server asked this SecAgg client for something the protocol forbids ({@code
 * crypten_lite.client.secagg_client.SecAggProtocolError}): an unsafe threshold, a neighbour list
 * that is empty, repeats a client, names this client or reuses a public key, a sharing set that
 * is not among the neighbours, an unexpected relayed share, an unmasking request that names a
 * client both survivor and dropped, asks about clients this client did not mask with, repeats a
 * client or comes twice; or a peer's public key that is not a usable X25519 key. Nothing was
 * sent for the request that was refused.
 */
public class SecAggProtocolException extends EdgeException {
  private static final long serialVersionUID = 1L;

  public SecAggProtocolException(String message) {
    super(message);
  }
}
