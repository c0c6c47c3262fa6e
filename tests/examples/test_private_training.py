"""examples/private_training.py: ``main`` in-process on 2 parties (threads) with ``--quick``,
and once through the launcher (real processes, gRPC with mutual TLS) for the logreg model."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from crypten_lite.runtime import LaunchOptions, launch
from crypten_lite.runtime.testing import run_parties

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "private_training.py"


def _example() -> ModuleType:
    name = "examples_private_training"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _check_model(entry: dict[str, Any], steps: int) -> None:
    assert entry["steps"] == steps and len(entry["private_loss"]) == steps
    assert len(entry["plaintext_loss"]) == steps
    private, plain = entry["private_accuracy"], entry["plaintext_accuracy"]
    assert 0.0 <= private <= 1.0 and 0.0 <= plain <= 1.0
    assert abs(private - plain) <= 0.03, entry  # a few points on the 150-image quick subset
    assert entry["prediction_agreement"] >= 0.95
    assert entry["max_abs_weight_deviation"] < 0.01
    losses = zip(entry["private_loss"], entry["plaintext_loss"], strict=True)
    assert max(abs(a - b) for a, b in losses) < 0.05
    assert entry["reload_weights_equal"] is True
    assert entry["reload_accuracy"] == private
    assert entry["train_rounds"] > 0 and entry["train_mb_sent"] > 0


def test_main_in_process_quick(tmp_path: Path) -> None:
    example = _example()
    argv = ["--quick", "--out", str(tmp_path)]
    results = run_parties(lambda session: example.main(argv), world_size=2, timeout_s=240)
    summary, other = results
    assert other is None
    assert summary == json.loads((tmp_path / "summary.json").read_text())
    assert summary["parties"] == 2 and summary["quick"] is True
    assert set(summary["models"]) == {"logreg", "cnn"}
    steps = example.QUICK_TRAIN // example.BATCH
    for entry in summary["models"].values():
        _check_model(entry, steps)
    # softmax regression learns something in 10 steps; the CNN barely starts (no check)
    assert summary["models"]["logreg"]["plaintext_accuracy"] > 0.4
    plot = tmp_path / "loss.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("logreg", "cnn"):  # one share file per party
        assert sorted(p.name for p in tmp_path.glob(f"{name}-model-*.ckpt")) == [
            f"{name}-model-0.ckpt", f"{name}-model-1.ckpt"
        ]


def test_launcher_quick_logreg(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = launch(
        SCRIPT,
        ["--quick", "--model", "logreg", "--out", str(tmp_path)],
        LaunchOptions(world_size=2),
        stdout=out,
        stderr=err,
    )
    text = out.getvalue()
    assert code == 0, err.getvalue() + text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["models"]) == {"logreg"}
    _check_model(summary["models"]["logreg"], 10)
    assert "[0] logreg: private test accuracy" in text
    assert "[0] logreg private: 100%" in text or "[0] logreg private [" in text
    assert "[1] party 1/2 (data owner): done" in text
    assert (tmp_path / "loss.png").exists()
