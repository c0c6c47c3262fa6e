"""Private training on handwritten digits: the data owner's images never leave it in the clear.

Run with ``crypten-lite-launch -n 2 examples/private_training.py`` (or ``-n 3``). Options:
``--model logreg|cnn|both`` (default both), ``--epochs E`` (default: 10 for logreg, 6 for the
CNN), ``--out DIR`` (default ``training_out/``), ``--quick`` (a small subset, 1 epoch: tests).

Roles: party 0 owns the model, party 1 the training data (with 3 parties, party 2 holds
nothing and only helps compute). The data are scikit-learn's bundled digits (offline), scaled
to [0, 1] and split once with a fixed seed (1347 training, 450 test images).

* Party 1 secret-shares the training images and their labels as one-hot rows
  (``cl.cryptensor(x, src=1)``); party 0 shares the initial weights (``model.encrypt(src=0)``)
  and ``model.requires_grad_()`` makes them autograd Parameters.
* Mini-batch SGD (``cl.optim.SGD``, batch 32, a fixed data order from the public seed; the
  last partial batch of an epoch is dropped): forward, ``CrossEntropyLoss`` on the secret
  one-hot labels, ``loss.backward()``, ``optimizer.step()``, all on shares. The loss of every
  step is revealed (every party calls ``get_plain_text``) for the progress bar and the plot.
* Models: softmax regression (``Linear(64, 10)``) on the 64 pixels, and the LeNet-style CNN
  of ``benchmarks/suite_models.py`` on 1x28x28 (each 8x8 digit upsampled 3x with ``np.kron``
  to 24x24 and zero-padded by 2), SGD with momentum 0.9, a one-epoch linear warm-up and a
  cosine decay of the learning rate.
* Evaluation: party 1 shares the test images, the parties run the trained model under
  ``cl.no_grad()`` and reveal only the one-hot argmax of each logit row (the predicted digit).
* Checkpoint: every party writes its own shares (``cl.save(model.state_dict(),
  out/"<model>-model-{rank}.ckpt")``), a fresh model loads them (``cl.load``) and is evaluated
  privately again: the same weights, the same accuracy.
* Reference: party 0 then trains the SAME model in plaintext — the same crypten_lite code on
  numpy arrays, the same initial weights and batch order — and reports both test accuracies,
  the largest deviation between the private weights (revealed to party 0, the model owner)
  and the plaintext weights, and the cost of the private training (party 0's
  ``session.stats``: rounds, bytes).

Demo simplifications: the predictions and the per-step loss are revealed to every party, the
test labels are public to party 0 for the report, and party 0 sees the digits data in the
clear only to train the plaintext reference.

Party 0 writes ``summary.json`` and ``loss.png`` (matplotlib, Agg) into ``--out``.
``main(argv)`` returns the summary on party 0 (``None`` elsewhere), so tests can call it
in-process under ``crypten_lite.runtime.testing.run_parties``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import crypten_lite as cl
from crypten_lite import nn

Array = np.ndarray[Any, Any]

MODEL_OWNER, DATA_OWNER = 0, 1
BATCH = 32
SEED = 0  # public: split, initial weights, batch order
TARGET_PP = 1.0  # private test accuracy within this many percentage points of plaintext
QUICK_TRAIN, QUICK_TEST = 320, 150


@dataclass(frozen=True)
class Spec:
    """A model, its hyper-parameters and the input shape of one image."""

    name: str
    build: Callable[[], nn.Module]
    shape: tuple[int, ...]
    lr: float
    momentum: float
    epochs: int
    eval_batch: int
    #: linear warm-up over the first epoch, then cosine decay, stepped per batch (LambdaLR):
    #: without it the CNN's SGD is chaotic after its initial plateau (a 1e-4 nudge of the
    #: initial weights moved the plaintext test accuracy by 4 points; with it by 0.4)
    warmup_cosine: bool = False


def build_logreg() -> nn.Module:
    return nn.Linear(64, 10, rng=np.random.default_rng(SEED + 1))


def build_cnn() -> nn.Module:
    rng = np.random.default_rng(SEED + 2)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120, rng=rng),
        nn.ReLU(),
        nn.Linear(120, 84, rng=rng),
        nn.ReLU(),
        nn.Linear(84, 10, rng=rng),
    )


SPECS = {
    "logreg": Spec("logreg", build_logreg, (64,), lr=0.5, momentum=0.0, epochs=10,
                   eval_batch=450),
    "cnn": Spec("cnn", build_cnn, (1, 28, 28), lr=0.02, momentum=0.9, epochs=6,
                eval_batch=150, warmup_cosine=True),
}


# -- data -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Digits:
    x_train: Array  # (n, 64) in [0, 1]
    y_train: Array  # (n,) labels 0..9
    x_test: Array
    y_test: Array


def load_digits(quick: bool) -> Digits:
    """scikit-learn's bundled digits scaled to [0, 1], 25% held out (fixed seed)."""
    from sklearn.datasets import load_digits as sk_digits  # type: ignore[import-untyped]
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

    digits = sk_digits()
    x = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=SEED)
    if quick:
        x_train, y_train = x_train[:QUICK_TRAIN], y_train[:QUICK_TRAIN]
        x_test, y_test = x_test[:QUICK_TEST], y_test[:QUICK_TEST]
    return Digits(x_train, y_train, x_test, y_test)


def images(x: Array, shape: tuple[int, ...]) -> Array:
    """Model inputs: the 64 pixels, or 1x28x28 (each pixel 3x3, padded by 2 each side)."""
    if shape == (64,):
        return x
    big = np.kron(x.reshape(-1, 8, 8), np.ones((1, 3, 3)))  # (n, 24, 24)
    return np.pad(big, ((0, 0), (2, 2), (2, 2)))[:, None]  # (n, 1, 28, 28)


def batches(n: int, epochs: int) -> Iterator[tuple[int, Array]]:
    """``(epoch, indices)`` of every full mini-batch, a public permutation per epoch."""
    rng = np.random.default_rng(SEED + 100)
    for epoch in range(epochs):
        order = rng.permutation(n)
        for lo in range(0, n - BATCH + 1, BATCH):
            yield epoch, order[lo : lo + BATCH]


# -- progress ---------------------------------------------------------------------------------
class Progress:
    """A progress line on party 0 every ``every`` steps: tqdm's meter if installed, else a
    plain textual bar (the launcher pipes output line by line: no carriage returns)."""

    def __init__(self, label: str, total: int, every: int, enabled: bool) -> None:
        self.label, self.total, self.every, self.enabled = label, total, every, enabled
        self.start = time.perf_counter()
        self.meter: Callable[..., str] | None
        try:
            from tqdm import tqdm  # type: ignore[import-untyped]

            self.meter = tqdm.format_meter
        except ImportError:
            self.meter = None

    def step(self, done: int, loss: float) -> None:
        if not self.enabled or (done % self.every and done != self.total):
            return
        if self.meter is not None:
            elapsed = time.perf_counter() - self.start
            line = self.meter(done, self.total, elapsed, ncols=90, ascii=True,
                              prefix=self.label, unit="step", postfix=f"loss={loss:.4f}")
        else:
            filled = 30 * done // self.total
            line = (f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} "
                    f"loss={loss:.4f}")
        print(line, flush=True)


# -- training ---------------------------------------------------------------------------------
def make_optimizer(model: nn.Module, spec: Spec) -> Any:
    params = list(model.parameters())
    if spec.momentum:
        return cl.optim.SGD(params, lr=spec.lr, momentum=spec.momentum)
    return cl.optim.SGD(params, lr=spec.lr)


def train(
    model: nn.Module, spec: Spec, x: Any, target: Any, epochs: int, progress: Progress | None
) -> list[float]:
    """Mini-batch SGD on ``x``/``target`` (shared images and one-hot rows, or public images
    and integer labels): the same code for both; every step's loss, revealed (all parties
    call this together)."""
    optimizer = make_optimizer(model, spec)
    per_epoch = len(x) // BATCH
    total = max(per_epoch * epochs, 1)
    schedule = (
        cl.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: min(1.0, (step + 1) / per_epoch)
            * 0.5 * (1.0 + math.cos(math.pi * step / total)),
        )
        if spec.warmup_cosine
        else None
    )
    loss_fn = nn.CrossEntropyLoss()
    losses: list[float] = []
    for _, idx in batches(len(x), epochs):
        optimizer.zero_grad()
        loss = loss_fn(model(x[idx]), target[idx])
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        losses.append(float(np.asarray(loss.get_plain_text())))
        if progress is not None:
            progress.step(len(losses), losses[-1])
    return losses


def value(out: Any) -> Any:
    """The MPCTensor or array inside a Variable (or the value itself)."""
    return out.data if isinstance(out, cl.Variable) else out


def predict_private(model: nn.Module, spec: Spec, x_test: Array | None, n: int) -> Array:
    """Party 1 shares the test images batch by batch; only the argmax is revealed."""
    preds = []
    with cl.no_grad():
        for lo in range(0, n, spec.eval_batch):
            hi = min(n, lo + spec.eval_batch)
            mine = None if x_test is None else images(x_test[lo:hi], spec.shape)
            shared = cl.cryptensor(mine, src=DATA_OWNER)
            logits = value(model(shared))
            one_hot = logits.argmax(dim=1).get_plain_text()
            preds.append(np.asarray(one_hot).argmax(axis=1))
    return np.concatenate(preds)


def predict_plain(model: nn.Module, spec: Spec, x_test: Array) -> Array:
    with cl.no_grad():
        logits = np.asarray(value(model(images(x_test, spec.shape))))
    return np.asarray(logits.argmax(axis=1))


def flat_weights(model: nn.Module, dst: int | None) -> Array | None:
    """Every parameter flattened and concatenated; shared ones revealed to ``dst`` (1 round)."""
    values = [value(p) for p in model.parameters()]
    if isinstance(values[0], cl.MPCTensor):
        revealed = cl.cat([v.reshape(-1) for v in values]).get_plain_text(dst)
        return None if revealed is None else np.asarray(revealed)
    return np.concatenate([np.asarray(v).reshape(-1) for v in values])


@dataclass
class Private:
    """Party 0's record of one model's private run."""

    losses: list[float]
    preds: Array
    reload_preds: Array
    weights: Array | None
    reload_weights_equal: bool
    train_s: float
    eval_s: float
    rounds: int
    bytes_sent: int
    bytes_received: int
    eval_rounds: int
    checkpoint: str


def run_private(spec: Spec, data: Digits, epochs: int, out: Path, log_every: int) -> Private:
    """Every party: share, train, evaluate, checkpoint, reload, evaluate again."""
    session = cl.current_session()
    rank = session.rank
    owns_data = rank == DATA_OWNER
    n_test = len(data.y_test)
    session.stats.reset()
    start = time.perf_counter()
    x = cl.cryptensor(images(data.x_train, spec.shape) if owns_data else None, src=DATA_OWNER)
    onehot = cl.cryptensor(np.eye(10)[data.y_train] if owns_data else None, src=DATA_OWNER)
    model = spec.build().encrypt(src=MODEL_OWNER).requires_grad_()
    steps = epochs * (len(data.y_train) // BATCH)
    progress = Progress(f"{spec.name} private", steps, log_every, rank == 0)
    losses = train(model, spec, x, onehot, epochs, progress)
    train_s = time.perf_counter() - start
    stats = session.stats.snapshot()

    session.stats.reset()
    start = time.perf_counter()
    preds = predict_private(model, spec, data.x_test if owns_data else None, n_test)
    eval_s = time.perf_counter() - start
    eval_rounds = session.stats.snapshot().rounds
    weights = flat_weights(model, dst=MODEL_OWNER)  # the model owner's trained model

    path = out / f"{spec.name}-model-{{rank}}.ckpt"
    cl.save(model.state_dict(), path)  # each party writes its own shares
    reloaded = spec.build()
    reloaded.load_state_dict(cl.load(path))
    reload_preds = predict_private(reloaded, spec, data.x_test if owns_data else None, n_test)
    reload_weights = flat_weights(reloaded, dst=MODEL_OWNER)
    same = weights is not None and reload_weights is not None and bool(
        np.array_equal(weights, reload_weights)
    )
    return Private(losses, preds, reload_preds, weights, same, train_s, eval_s, stats.rounds,
                   stats.bytes_sent, stats.bytes_received, eval_rounds, str(path))


@dataclass
class Report:
    """One model's results (party 0)."""

    model: str
    parties: int
    epochs: int
    steps: int
    train_size: int
    test_size: int
    lr: float
    momentum: float
    private_accuracy: float
    plaintext_accuracy: float
    accuracy_gap_pp: float
    target_met: bool
    prediction_agreement: float
    max_abs_weight_deviation: float
    reload_accuracy: float
    reload_weights_equal: bool
    private_train_s: float
    private_eval_s: float
    plaintext_train_s: float
    train_rounds: int
    train_mb_sent: float
    train_mb_received: float
    eval_rounds: int
    checkpoint: str
    private_loss: list[float] = field(repr=False)
    plaintext_loss: list[float] = field(repr=False)


def report(spec: Spec, data: Digits, epochs: int, private: Private, parties: int) -> Report:
    """Party 0: train the plaintext twin and compare."""
    start = time.perf_counter()
    plain = spec.build().requires_grad_()  # the same initial weights (public seed)
    x = images(data.x_train, spec.shape)
    # public targets are integer labels (the same gradient as the one-hot rows)
    plain_losses = train(plain, spec, x, data.y_train, epochs, None)
    plain_s = time.perf_counter() - start
    plain_preds = predict_plain(plain, spec, data.x_test)
    plain_weights = flat_weights(plain, dst=None)
    assert private.weights is not None and plain_weights is not None
    private_acc = float(np.mean(private.preds == data.y_test))
    plain_acc = float(np.mean(plain_preds == data.y_test))
    gap = 100.0 * (plain_acc - private_acc)
    return Report(
        model=spec.name,
        parties=parties,
        epochs=epochs,
        steps=len(private.losses),
        train_size=len(data.y_train),
        test_size=len(data.y_test),
        lr=spec.lr,
        momentum=spec.momentum,
        private_accuracy=private_acc,
        plaintext_accuracy=plain_acc,
        accuracy_gap_pp=gap,
        target_met=abs(gap) <= TARGET_PP,
        prediction_agreement=float(np.mean(private.preds == plain_preds)),
        max_abs_weight_deviation=float(np.max(np.abs(private.weights - plain_weights))),
        reload_accuracy=float(np.mean(private.reload_preds == data.y_test)),
        reload_weights_equal=private.reload_weights_equal,
        private_train_s=private.train_s,
        private_eval_s=private.eval_s,
        plaintext_train_s=plain_s,
        train_rounds=private.rounds,
        train_mb_sent=private.bytes_sent / 1e6,
        train_mb_received=private.bytes_received / 1e6,
        eval_rounds=private.eval_rounds,
        checkpoint=private.checkpoint,
        private_loss=private.losses,
        plaintext_loss=plain_losses,
    )


def print_report(r: Report) -> None:
    met = "met" if r.target_met else "NOT met"
    print(
        f"{r.model}: private test accuracy {r.private_accuracy:.2%}, plaintext "
        f"{r.plaintext_accuracy:.2%} (gap {r.accuracy_gap_pp:+.2f} pp; target within "
        f"{TARGET_PP:g} pp: {met}), prediction agreement {r.prediction_agreement:.4f}, "
        f"max |private - plaintext weight| {r.max_abs_weight_deviation:.2e}",
        flush=True,
    )
    print(
        f"{r.model}: private training {r.steps} steps ({r.epochs} epochs of {r.train_size} "
        f"images) {r.private_train_s:.1f} s wall, {r.train_rounds} rounds, "
        f"{r.train_mb_sent:.1f} MB sent, {r.train_mb_received:.1f} MB received (party 0); "
        f"private evaluation of {r.test_size} images {r.private_eval_s:.1f} s, "
        f"{r.eval_rounds} rounds; plaintext training {r.plaintext_train_s:.1f} s",
        flush=True,
    )
    same = "identical" if r.reload_weights_equal else "DIFFERENT"
    print(
        f"{r.model}: checkpoint {r.checkpoint} reloaded: weights {same}, private test "
        f"accuracy {r.reload_accuracy:.2%}",
        flush=True,
    )


def write_outputs(out: Path, summary: dict[str, Any], reports: list[Report]) -> None:
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {path}", flush=True)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed: skipping the loss plot "
              "(pip install 'crypten-lite[demo]')", flush=True)
        return
    # Figure + the Agg canvas directly (no pyplot state: safe in a party thread too)
    fig = Figure(figsize=(6 * len(reports), 4))
    FigureCanvasAgg(fig)
    for i, r in enumerate(reports):
        ax = fig.add_subplot(1, len(reports), i + 1)
        steps = np.arange(1, len(r.private_loss) + 1)
        ax.plot(steps, r.plaintext_loss, label="plaintext", linewidth=2.0, alpha=0.6)
        ax.plot(steps, r.private_loss, label="private (MPC)", linewidth=1.0, linestyle="--")
        ax.set_xlabel("SGD step (batch 32)")
        ax.set_ylabel("cross-entropy loss")
        ax.set_title(f"{r.model}: test accuracy {r.private_accuracy:.1%} private, "
                     f"{r.plaintext_accuracy:.1%} plaintext", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Private training on digits, {reports[0].parties} parties", fontsize=10)
    fig.tight_layout()
    plot = out / "loss.png"
    fig.savefig(plot, dpi=100)
    print(f"wrote {plot}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", choices=("logreg", "cnn", "both"), default="both")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs for every model (default: logreg 10, cnn 6; --quick 1)")
    parser.add_argument("--out", type=Path, default=Path("training_out"))
    parser.add_argument("--quick", action="store_true",
                        help=f"the first {QUICK_TRAIN} training and {QUICK_TEST} test images, "
                        "1 epoch")
    parser.add_argument("--log-every", type=int, default=None,
                        help="steps between progress lines (default 5, --quick 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Run on every party (the current session); the summary on party 0, else ``None``."""
    args = parse_args(argv)
    session = cl.current_session()
    rank, world = session.rank, session.world_size
    if world < 2:
        raise SystemExit("private training needs at least 2 parties (model owner, data owner)")
    data = load_digits(args.quick)
    epochs_for = {n: args.epochs or (1 if args.quick else s.epochs) for n, s in SPECS.items()}
    log_every = args.log_every or (1 if args.quick else 5)
    names = ("logreg", "cnn") if args.model == "both" else (args.model,)
    args.out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        helper = ", party 2 helps" if world > 2 else ""
        print(f"private training on digits: {len(data.y_train)} training / "
              f"{len(data.y_test)} test images, {world} parties (model owner {MODEL_OWNER}, "
              f"data owner {DATA_OWNER}{helper}), batch {BATCH}", flush=True)
    start = time.perf_counter()
    privates = {n: run_private(SPECS[n], data, epochs_for[n], args.out, log_every)
                for n in names}
    private_s = time.perf_counter() - start
    if rank != 0:
        role = "data owner" if rank == DATA_OWNER else "helper"
        print(f"party {rank}/{world} ({role}): done, {private_s:.1f} s", flush=True)
        return None

    reports = []
    for n in names:
        reports.append(report(SPECS[n], data, epochs_for[n], privates[n], world))
        print_report(reports[-1])
    all_met = all(r.target_met for r in reports)
    verdicts = ", ".join(f"{r.model} {'met' if r.target_met else 'NOT met'}" for r in reports)
    print(f"target (private test accuracy within {TARGET_PP:g} pp of plaintext): {verdicts}; "
          f"private part {private_s:.1f} s wall", flush=True)
    summary = {
        "parties": world,
        "quick": args.quick,
        "batch": BATCH,
        "seed": SEED,
        "target_pp": TARGET_PP,
        "target_met": all_met,
        "private_wall_s": private_s,
        "models": {r.model: asdict(r) for r in reports},
    }
    write_outputs(args.out, summary, reports)
    return summary


if __name__ == "__main__":
    main()
