package io.cryptenlite.edge;

/**
 * Weighted FedAvg packing ({@code crypten_lite.client.pack_weighted_update}): the vector a
 * client shares is {@code [w * delta, w]} with {@code w = n_examples / weight_cap} in (0, 1],
 * so the servers' sum carries both the weighted sum and the total weight. Secret: the result
 * is the client's update.
 */
public final class WeightedUpdate {
  private WeightedUpdate() {}

  /**
   * {@code [weight * delta..., weight]}.
   *
   * @throws IllegalArgumentException unless {@code 0 < weight <= 1}
   */
  public static double[] pack(double[] delta, double weight) {
    if (!(weight > 0 && weight <= 1)) {
      throw new IllegalArgumentException("weight must lie in (0, 1], got " + weight);
    }
    double[] out = new double[delta.length + 1];
    for (int i = 0; i < delta.length; i++) {
      out[i] = weight * delta[i];
    }
    out[delta.length] = weight;
    return out;
  }
}
