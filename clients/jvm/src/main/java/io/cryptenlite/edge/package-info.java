/**
 * The crypten_lite edge client: secret-shared model-update uploads and private-inference queries
 * to the servers of one job over gRPC (see {@link io.cryptenlite.edge.EdgeClient}), and
 * single-server secure aggregation (SecAgg/SecAgg+, see {@link io.cryptenlite.edge.SecAggClient};
 * X25519 needs Java 11+ or Android API 33+ at run time).
 *
 * <p>What travels: to each seed server a 32-byte seed, to the last server the masked vector
 * (raw little-endian ring elements), plus public headers (round, nonce, sizes, model name,
 * shape). What is secret: the update, the inference input and output, the seeds and the
 * masked vector (each share goes to one server only), the TLS private key and any operator
 * token. Nothing in this package logs or prints them.
 */
package io.cryptenlite.edge;
