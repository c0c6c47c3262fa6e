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
