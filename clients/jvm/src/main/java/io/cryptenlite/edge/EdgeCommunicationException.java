package io.cryptenlite.edge;

/**
 * The exchange with a server broke (an internal server error, a cancelled call) or a server's
 * reply does not make sense (unknown round state, inconsistent servers, wrong share size).
 */
public class EdgeCommunicationException extends EdgeException {
  private static final long serialVersionUID = 1L;

  public EdgeCommunicationException(String message) {
    super(message);
  }

  public EdgeCommunicationException(String message, Throwable cause) {
    super(message, cause);
  }
}
