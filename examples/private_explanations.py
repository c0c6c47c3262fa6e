"""Private explanations: Integrated Gradients and SmoothGrad of an encrypted digits CNN on a
patient's encrypted images; only the patient receives the heatmaps.

Run with ``crypten-lite-launch -n 2 examples/private_explanations.py`` (or ``-n 3``). Options:
``--images N`` (default 4), ``--n-steps S`` (default 32), ``--nt-samples K`` (default 8),
``--stdevs SD`` (default 0.1), ``--epochs E`` (default 6), ``--out DIR`` (default
``explanations_out/``), ``--quick`` (2 images, 16 steps, 4 noisy copies, 3 short epochs: tests).

Roles: party 0 is the model owner, party 1 the patient (with 3 parties, party 2 holds nothing
and only helps compute).

* Party 0 trains the LeNet-style CNN of ``examples/private_training.py`` (1x28x28: each 8x8
  scikit-learn digit upsampled 3x and zero-padded by 2) in PLAINTEXT with the library's numpy
  autograd (``private_training.train``: SGD with momentum, warm-up + cosine schedule; a few
  seconds), then secret-shares it (``model.encrypt(src=0)``).
* The patient secret-shares a batch of its private test images (``cl.cryptensor(x, src=1)``,
  shape ``(N, 1, 28, 28)``); the parties classify them privately.
* ``IntegratedGradients(model).attribute(x, target=pred, n_steps=32,
  method="gausslegendre", return_convergence_delta=True, dst=1)`` (zero baseline) and
  ``NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=8,
  stdevs=0.1, target=pred, dst=1)``: each is ONE forward and ONE backward of the encrypted
  model on one stacked batch (the path points / noisy copies of every image); the noise of
  SmoothGrad is drawn privately by every party (no party knows it). With ``dst=1`` only the
  patient receives the heatmaps and the IG completeness deltas (the others get ``None``).
* Reference: the patient compares the private IG heatmaps with the plaintext IG of the same
  model and images: Captum 0.9 on a float64 torch twin when torch and captum are importable,
  else ``crypten_lite.explain`` on the plaintext model and arrays (the plot and the output
  say which), and prints the Pearson correlation per image, the IG completeness delta
  ``sum(attr) - (F(x)_t - F(0)_t)`` and the cost (rounds, bytes, seconds) of each
  attribution (its own ``session.stats``).

Demo simplifications: the target class of an attribution must be public to all parties in
``crypten_lite.explain``, so the predicted class is revealed to BOTH parties (a deployment
that hides it would explain every class, or a class the patient chooses, at the same cost per
class); and the model owner reveals the trained weights to the patient only AFTER the private
part (``model.decrypt(dst=1)``), so that the patient can compute the plaintext reference.

Party 1 writes ``explanations.png`` (rows: images; columns: image, plaintext IG, private IG,
private SmoothGrad; matplotlib, Agg) and ``summary.json`` into ``--out``. ``main(argv)``
returns a dict on every party (the heatmaps are ``None`` except on party 1), so tests can
call it in-process under ``crypten_lite.runtime.testing.run_parties``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import private_training as training

import crypten_lite as cl
from crypten_lite import nn
from crypten_lite.explain import IntegratedGradients, NoiseTunnel, Saliency

Array = np.ndarray[Any, Any]

MODEL_OWNER, PATIENT = 0, 1
SPEC = training.SPECS["cnn"]
#: --quick: 3 epochs at a larger learning rate (about 2.5 s, 94% test accuracy)
QUICK_SPEC = dataclasses.replace(SPEC, lr=0.1, epochs=3)


# -- model ------------------------------------------------------------------------------------
def trained_model(spec: training.Spec, epochs: int, rank: int) -> tuple[nn.Module, float]:
    """Party 0 trains the CNN in plaintext (returns it and its training seconds); the other
    parties build the same architecture, whose values ``encrypt(src=0)`` ignores."""
    model = spec.build()
    if rank != MODEL_OWNER:
        return model, 0.0
    data = training.load_digits(quick=False)
    start = time.perf_counter()
    model.requires_grad_()
    x = training.images(data.x_train, spec.shape)
    training.train(model, spec, x, data.y_train, epochs, None)
    seconds = time.perf_counter() - start
    model.eval()
    acc = float(np.mean(training.predict_plain(model, spec, data.x_test) == data.y_test))
    trained = spec.build().load_state_dict(model.state_dict())  # plain arrays, no Parameters
    print(f"model owner: trained the CNN in plaintext, {epochs} epochs of "
          f"{len(data.y_train)} images in {seconds:.1f} s, test accuracy {acc:.1%}", flush=True)
    return trained, seconds


def torch_twin(model: nn.Module) -> Any:
    """The plaintext model as a float64 torch ``Sequential`` (same weights), or ``None``
    when torch is not importable."""
    try:
        import torch
    except ImportError:
        return None
    layers: list[Any] = []
    for layer in model.children():
        kind = type(layer).__name__
        if kind == "Conv2d":
            t = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                stride=layer.stride, padding=layer.padding)
        elif kind == "Linear":
            t = torch.nn.Linear(layer.in_features, layer.out_features)
        elif kind == "MaxPool2d":
            t = torch.nn.MaxPool2d(layer.kernel_size, layer.stride)
        elif kind in ("ReLU", "Flatten"):
            t = getattr(torch.nn, kind)()
        else:
            return None
        if kind in ("Conv2d", "Linear"):
            with torch.no_grad():
                t.weight.copy_(torch.from_numpy(np.asarray(training.value(layer.weight))))
                t.bias.copy_(torch.from_numpy(np.asarray(training.value(layer.bias))))
        layers.append(t)
    return torch.nn.Sequential(*layers).double().eval()


def plaintext_ig(model: nn.Module, x: Array, target: Array, n_steps: int) -> tuple[Array, str]:
    """The reference IG heatmaps and their source: Captum on the torch twin, else
    crypten_lite's own IG on public arrays (local: no communication)."""
    twin = torch_twin(model)
    if twin is not None:
        try:
            import torch
            from captum.attr import IntegratedGradients as CaptumIG  # type: ignore[import-not-found]
        except ImportError:
            twin = None
    if twin is not None:
        attr = CaptumIG(twin).attribute(
            torch.from_numpy(x), target=[int(t) for t in target], n_steps=n_steps,
            method="gausslegendre",
        )
        return np.asarray(attr.detach().numpy(), dtype=np.float64), "Captum 0.9 (torch twin)"
    attr = IntegratedGradients(model).attribute(x, target=target, n_steps=n_steps,
                                                method="gausslegendre")
    return np.asarray(attr, dtype=np.float64), "crypten_lite.explain (plaintext)"


# -- private part -----------------------------------------------------------------------------
@dataclasses.dataclass
class Cost:
    seconds: float
    rounds: int
    bytes_sent: int
    bytes_received: int

    def line(self) -> str:
        return (f"{self.seconds:.2f} s, {self.rounds} rounds, {self.bytes_sent / 1e6:.1f} MB "
                f"sent, {self.bytes_received / 1e6:.1f} MB received")


def measured(session: cl.Session, fn: Any) -> tuple[Any, Cost]:
    session.stats.reset()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    stats = session.stats.snapshot()
    return out, Cost(seconds, stats.rounds, stats.bytes_sent, stats.bytes_received)


def classify(model: nn.Module, x: cl.MPCTensor) -> Array:
    """The predicted class of every image, revealed to every party (the demo's
    simplification: the attribution's target must be public)."""
    with cl.no_grad():
        logits = training.value(model(x))
        one_hot = logits.argmax(dim=1).get_plain_text()
    return np.asarray(np.asarray(one_hot).argmax(axis=1), dtype=np.int64)


def pearson(a: Array, b: Array) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denom) if denom > 0 else float("nan")


# -- output -----------------------------------------------------------------------------------
def write_png(path: Path, images: Array, labels: Array, pred: Array, plain: Array,
              source: str, ig: Array, smooth: Array, n_steps: int, nt_samples: int) -> bool:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed: skipping the plot "
              "(pip install 'crypten-lite[demo]')", flush=True)
        return False
    n = len(images)
    fig = Figure(figsize=(10, 2.5 * n + 0.6))
    FigureCanvasAgg(fig)  # no pyplot state: safe in a party thread
    titles = (
        "image",
        f"plaintext IG\n{source}",
        f"private IG ({n_steps} steps)",
        f"private SmoothGrad\n(Saliency, {nt_samples} samples)",
    )
    for i in range(n):
        lim = float(max(np.abs(plain[i]).max(), np.abs(ig[i]).max(), 1e-12))
        panels = (
            (images[i, 0], "gray_r", 0.0, 1.0),
            (plain[i, 0], "bwr", -lim, lim),
            (ig[i, 0], "bwr", -lim, lim),
            (smooth[i, 0], "hot", 0.0, float(max(smooth[i].max(), 1e-12))),
        )
        for j, (data, cmap, lo, hi) in enumerate(panels):
            ax = fig.add_subplot(n, 4, 4 * i + j + 1)
            ax.imshow(data, cmap=cmap, vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=8)
            if j == 0:
                ax.set_ylabel(f"label {labels[i]}, predicted {pred[i]}", fontsize=8)
    fig.suptitle("Private explanations of an encrypted digits CNN (only the patient sees them)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="test images (default 4)")
    parser.add_argument("--n-steps", type=int, default=None, help="IG steps (default 32)")
    parser.add_argument("--nt-samples", type=int, default=None,
                        help="SmoothGrad noisy copies (default 8)")
    parser.add_argument("--stdevs", type=float, default=0.1, help="SmoothGrad noise std")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"plaintext training epochs (default {SPEC.epochs})")
    parser.add_argument("--out", type=Path, default=Path("explanations_out"))
    parser.add_argument("--quick", action="store_true",
                        help="2 images, 16 steps, 4 noisy copies, 3 training epochs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run on every party (the current session). Returns a dict on every party; its
    heatmaps (``ig``, ``smoothgrad``, ``delta``, ``plain_ig``) are ``None`` except on party
    1, the patient."""
    args = parse_args(argv)
    session = cl.current_session()
    rank, world = session.rank, session.world_size
    if world < 2:
        raise SystemExit("private explanations need at least 2 parties (model owner, patient)")
    spec = QUICK_SPEC if args.quick else SPEC
    epochs = args.epochs or spec.epochs
    n_images = args.images or (2 if args.quick else 4)
    n_steps = args.n_steps or (16 if args.quick else 32)
    nt_samples = args.nt_samples or (4 if args.quick else 8)
    if rank == MODEL_OWNER:
        helper = ", party 2 helps" if world > 2 else ""
        print(f"private explanations: {world} parties (model owner {MODEL_OWNER}, patient "
              f"{PATIENT}{helper}), {n_images} private test images", flush=True)

    model, train_s = trained_model(spec, epochs, rank)
    model.eval().encrypt(src=MODEL_OWNER)

    # the patient's private images: the first test digits of the public split (demo data)
    labels = images = None
    if rank == PATIENT:
        data = training.load_digits(quick=False)
        images = training.images(data.x_test[:n_images], spec.shape)
        labels = data.y_test[:n_images]
    x = cl.cryptensor(images, src=PATIENT)

    pred, classify_cost = measured(session, lambda: classify(model, x))
    (ig, delta), ig_cost = measured(session, lambda: IntegratedGradients(model).attribute(
        x, target=pred, n_steps=n_steps, method="gausslegendre",
        return_convergence_delta=True, dst=PATIENT))
    smooth, sg_cost = measured(session, lambda: NoiseTunnel(Saliency(model)).attribute(
        x, nt_type="smoothgrad", nt_samples=nt_samples, stdevs=args.stdevs, target=pred,
        dst=PATIENT))
    costs = {"classify": classify_cost, "integrated_gradients": ig_cost,
             "smoothgrad": sg_cost}
    if rank == MODEL_OWNER:
        print(f"predicted classes (revealed to every party): {pred.tolist()}", flush=True)
        print(f"model owner: private classification {classify_cost.line()}; IG "
              f"{ig_cost.line()}; SmoothGrad {sg_cost.line()}; heatmaps received: "
              f"{ig is not None or smooth is not None}", flush=True)

    # demo simplification: the model owner reveals the weights to the patient (after the
    # private part) for the plaintext reference
    model.decrypt(dst=PATIENT)
    result: dict[str, Any] = {
        "rank": rank, "parties": world, "predicted": pred.tolist(), "n_steps": n_steps,
        "nt_samples": nt_samples, "train_s": train_s,
        "costs": {k: dataclasses.asdict(c) for k, c in costs.items()},
        "ig": ig, "delta": delta, "smoothgrad": smooth, "plain_ig": None, "reference": None,
        "correlation": None, "png": None,
    }
    if rank != PATIENT:
        if rank != MODEL_OWNER:
            print(f"party {rank}/{world} (helper): done", flush=True)
        return result

    assert images is not None and labels is not None and ig is not None and smooth is not None
    plain, source = plaintext_ig(model, images, pred, n_steps)
    corr = [pearson(ig[i], plain[i]) for i in range(n_images)]
    for name, cost in costs.items():
        print(f"patient: {name.replace('_', ' ')} of {n_images} images: {cost.line()}",
              flush=True)
    print(f"patient: plaintext reference: {source}", flush=True)
    for i in range(n_images):
        print(f"patient: image {i} (label {labels[i]}, predicted {pred[i]}): Pearson r(private "
              f"IG, plaintext IG) = {corr[i]:.5f}, max |diff| = "
              f"{float(np.abs(ig[i] - plain[i]).max()):.2e}, IG completeness delta = "
              f"{float(delta[i]):+.2e}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "explanations.png"
    wrote = write_png(png, images, labels, pred, plain, source, ig, smooth, n_steps, nt_samples)
    result.update(plain_ig=plain, reference=source, correlation=corr,
                  png=str(png) if wrote else None)
    summary = {k: v for k, v in result.items() if k not in ("ig", "smoothgrad", "plain_ig")}
    summary["delta"] = np.asarray(delta).tolist()
    summary["labels"] = np.asarray(labels).tolist()
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if wrote:
        print(f"wrote {png}", flush=True)
    return result


if __name__ == "__main__":
    main()
