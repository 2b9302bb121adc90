"""The README's "Extending tinybin" section works as written: its code blocks (a block, a loss, a
data kind, each one definition plus its registration) are run here, and a network built from all
three trains for 3 steps through the command line and is evaluated with the kind's metric."""
import os
import re
import types

import numpy as np
import pytest

import tinybin as tb
from tinybin.blocks import BLOCKS, make_block
from tinybin.data import KINDS
from tinybin.gradcheck import check_grads
from tinybin.losses import LOSSES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_blocks() -> list[str]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    m = re.search(r"^## Extending tinybin\n(.*?)^## ", text, re.S | re.M)
    assert m, "README.md has no '## Extending tinybin' section"
    blocks = re.findall(r"```python\n(.*?)```", m.group(1), re.S)
    assert len(blocks) == 4, f"expected 4 python blocks (block, loss, kind, CLI), found {len(blocks)}"
    return blocks


@pytest.fixture
def registered():
    """The README's block, loss and kind, registered for one test and removed afterwards."""
    saved = dict(BLOCKS), dict(LOSSES), dict(KINDS)
    mod = types.ModuleType("readme_extending")
    try:
        for src in readme_blocks()[:3]:
            exec(compile(src, "README.md (Extending tinybin)", "exec"), mod.__dict__)
        yield mod
    finally:
        for reg, old in zip((BLOCKS, LOSSES, KINDS), saved):
            reg.clear()
            reg.update(old)


def test_readme_extension_trains_through_the_cli(registered, tmp_path, monkeypatch):
    assert {"plain"} <= set(BLOCKS) and "sigmoid_mse" in LOSSES and "jaw" in KINDS
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    exec(compile(readme_blocks()[3], "README.md (Extending tinybin)", "exec"), {})
    ckpt = tmp_path / "runs" / "extending" / "checkpoint.npz"
    assert ckpt.exists()
    from tinybin.serialization import read_meta, read_npz
    meta = read_meta(read_npz(str(ckpt)), str(ckpt), "checkpoint")
    assert meta["config"]["block"] == "plain" and meta["config"]["num_landmarks"] == 17
    assert meta["train_config"]["loss"] == "sigmoid_mse" and meta["train_config"]["steps"] == 3
    net = tb.HourGlass.from_config(meta["config"])
    tb.load(net, str(ckpt))
    assert any(type(m).__name__ == "Plain" for m in net.modules())
    from tinybin.experiments import make_data
    from tinybin.train import evaluate
    _, test = make_data("jaw", n_train=1, n_test=4, resolution=32)
    r = evaluate(net, test)
    assert r["kind"] == "jaw" and np.isfinite(r["nme"]) and r["score"] == -r["nme"]


def test_readme_block_carries_its_width_rule(registered):
    Plain = BLOCKS["plain"]
    assert Plain.widths(16) == 8 and Plain.options() == ()
    with pytest.raises(ValueError, match="even out_channels"):
        make_block("plain", 4, 6 + 1)
    with pytest.raises(ValueError, match="does not take"):
        make_block("plain", 4, 8, depth=3)
    blk = make_block("plain", 6, 8, rng=0)
    assert [m.conv.weight.shape for m in (blk.conv1, blk.conv2)] == [(4, 3, 3, 6), (8, 3, 3, 4)]


def test_readme_loss_matches_its_formula_and_gradient(registered):
    rng = np.random.default_rng(0)
    z = tb.Tensor(rng.normal(size=(2, 3, 4, 5)), requires_grad=True)       # float64
    p = rng.random((2, 3, 4, 5))
    w = (rng.random((2, 5)) > 0.3).astype(np.float64)
    fn = LOSSES["sigmoid_mse"].fn
    s = 1 / (1 + np.exp(-z.data))
    want = (((s - p) ** 2) * w[:, None, None, :]).sum() / (2 * 5)
    np.testing.assert_allclose(fn(z, p, w).data, want, rtol=1e-12)
    assert check_grads(lambda z: fn(z, p, w), [z]) < 1e-6
