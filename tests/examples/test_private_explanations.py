"""examples/private_explanations.py: ``main`` in-process on 2 parties (threads) with
``--quick``, and once through the launcher (real processes, gRPC with mutual TLS)."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from crypten_lite.runtime import LaunchOptions, launch
from crypten_lite.runtime.testing import run_parties

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCRIPT = EXAMPLES / "private_explanations.py"
PNG = b"\x89PNG\r\n\x1a\n"


def _example() -> ModuleType:
    name = "examples_private_explanations"
    if name in sys.modules:
        return sys.modules[name]
    if str(EXAMPLES) not in sys.path:  # it imports its sibling private_training
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_main_in_process_quick(tmp_path: Path) -> None:
    example = _example()
    argv = ["--quick", "--out", str(tmp_path)]
    owner, patient = run_parties(lambda session: example.main(argv), world_size=2,
                                 timeout_s=240)
    # only the patient received the heatmaps and the deltas
    for key in ("ig", "delta", "smoothgrad", "plain_ig", "correlation", "png"):
        assert owner[key] is None, key
    ig, smooth, delta = patient["ig"], patient["smoothgrad"], patient["delta"]
    assert isinstance(ig, np.ndarray) and ig.shape == (2, 1, 28, 28)
    assert isinstance(smooth, np.ndarray) and smooth.shape == (2, 1, 28, 28)
    assert np.all(smooth >= 0)  # SmoothGrad of |gradient|
    assert delta.shape == (2,) and np.all(np.abs(delta) < 0.5)
    assert owner["predicted"] == patient["predicted"]  # the public target, on both parties
    assert len(patient["correlation"]) == 2
    assert min(patient["correlation"]) >= 0.95, patient["correlation"]
    # the cost does not depend on the number of images or steps: O(1) rounds
    assert 0 < patient["costs"]["integrated_gradients"]["rounds"] < 100
    for name, cost in patient["costs"].items():  # every party runs the same rounds
        assert owner["costs"][name]["rounds"] == cost["rounds"], name
    png = tmp_path / "explanations.png"
    assert patient["png"] == str(png) and png.read_bytes()[:8] == PNG
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["correlation"] == patient["correlation"]


def test_launcher_quick(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = launch(
        SCRIPT,
        ["--quick", "--out", str(tmp_path)],
        LaunchOptions(world_size=2),
        stdout=out,
        stderr=err,
    )
    text = out.getvalue()
    assert code == 0, err.getvalue() + text
    assert "[0] predicted classes (revealed to every party):" in text
    assert "heatmaps received: False" in text
    assert "[1] patient: integrated gradients of 2 images:" in text
    assert text.count("Pearson r(private IG, plaintext IG)") == 2
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert min(summary["correlation"]) >= 0.95
    assert (tmp_path / "explanations.png").read_bytes()[:8] == PNG
