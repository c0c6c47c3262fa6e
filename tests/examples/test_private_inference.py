"""examples/private_inference.py through the local launcher: real processes, mutual TLS, a
few test digits, both models; private and plaintext predictions must agree."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from crypten_lite.runtime import LaunchOptions, launch

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "private_inference.py"
LIMIT = 60
RESULT = re.compile(
    r"^\[0\] (mlp|cnn): plaintext accuracy ([\d.]+)%, private accuracy ([\d.]+)%, "
    r"agreement ([\d.]+)",
    re.MULTILINE,
)


@pytest.mark.parametrize("world_size", [2, 3])
def test_private_inference_agrees_with_plaintext(world_size: int) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = launch(
        SCRIPT,
        ["--limit", str(LIMIT), "--batch", "30"],
        LaunchOptions(world_size=world_size),
        stdout=out,
        stderr=err,
    )
    assert code == 0, err.getvalue()
    text = out.getvalue()
    found = {m[1]: (float(m[2]), float(m[3]), float(m[4])) for m in RESULT.finditer(text)}
    assert set(found) == {"mlp", "cnn"}, text
    for name, (plain, private, agreement) in found.items():
        assert agreement >= 0.98, f"{name}: {text}"
        assert plain >= 80.0 and private >= 80.0, f"{name}: {text}"
    assert f"{LIMIT} digits test images, {world_size} parties" in text
    others = [line for line in text.splitlines() if not line.startswith("[0]")]
    assert sorted(line.split()[0] for line in others) == [f"[{r}]" for r in range(1, world_size)]


INT8 = re.compile(
    r"^\[0\] (mlp|cnn)-int8: float accuracy ([\d.]+)%, int8 accuracy ([\d.]+)%, private "
    r"accuracy ([\d.]+)%, agreement with float ([\d.]+), with int8 ([\d.]+), logits one step "
    r"off int8 (\d+)/(\d+)",
    re.MULTILINE,
)


@pytest.mark.parametrize(("world_size", "model"), [(2, "both"), (3, "mlp")])
def test_private_int8_inference_agrees_with_plaintext_int8(world_size: int, model: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = launch(
        SCRIPT,
        ["--int8", "--model", model, "--limit", str(LIMIT), "--batch", "30"],
        LaunchOptions(world_size=world_size),
        stdout=out,
        stderr=err,
    )
    assert code == 0, err.getvalue()
    text = out.getvalue()
    found = {m[1]: m.groups()[1:] for m in INT8.finditer(text)}
    assert set(found) == ({"mlp", "cnn"} if model == "both" else {model}), text
    for name, (flt, int8, private, agree_float, agree_int8, off, total) in found.items():
        assert float(flt) >= 80.0 and float(int8) >= 80.0 and float(private) >= 80.0, name
        assert float(agree_float) >= 0.95 and float(agree_int8) >= 0.98, f"{name}: {text}"
        assert int(total) == LIMIT * 10 and int(off) <= 3, f"{name}: {text}"  # ties only
    assert f"int8 inference on {LIMIT} digits test images, {world_size} parties" in text
