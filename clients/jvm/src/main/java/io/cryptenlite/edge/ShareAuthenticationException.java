package io.cryptenlite.edge;

import java.security.GeneralSecurityException;

/**
 * A relayed sealed share failed AES-GCM authentication: tampered with, truncated, or meant for
 * another client, round or job ({@code crypten_lite.edge.secagg_crypto.ShareAuthenticationError}).
 * {@link SecAggClient} reports its sender to the server as a complaint and goes on.
 */
public class ShareAuthenticationException extends GeneralSecurityException {
  private static final long serialVersionUID = 1L;

  public ShareAuthenticationException(String message) {
    super(message);
  }
}
