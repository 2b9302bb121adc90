"""Modules: registration, modes, state dicts, freezing, the pre-activation units, checkpoints,
and a small binary network that must overfit one batch."""
import os

import numpy as np
import pytest

import tinybin as tb
import tinybin.functional as F
from tinybin import Tensor, nn
from tinybin.gradcheck import check_grads


class Tiny(nn.Module):
    def __init__(self, binary=True, c=8, seed=0):
        super().__init__()
        r = np.random.default_rng(seed)
        self.config = {"c": c, "binary": binary}
        self.stem = nn.Conv2d(3, c, 3, rng=r)
        self.u1 = nn.PreActConv(c, c, 3, binary=binary, rng=r)
        self.u2 = nn.PreActConv(c, c // 2, 1, binary=binary, rng=r)
        self.u3 = nn.PreActConv(c // 2, c // 2, 3, binary=binary, rng=r)
        self.bn = nn.BatchNorm2d(c)
        self.head = nn.Conv2d(c, 2, 1, rng=r)

    def forward(self, x):
        h = self.stem(x)
        a = self.u1(h)
        b = self.u2(a)
        c = self.u3(b)
        h = F.concat([b, c]) + a
        return self.head(F.relu(self.bn(h)))


def test_registration_and_state_dict_keys():
    m = Tiny()
    names = [n for n, _ in m.named_parameters()]
    assert "u1.bn.weight" in names and "u1.conv.weight" in names and "head.bias" in names
    assert "u1.conv.bias" not in names  # binary convs carry no bias
    sd = m.state_dict()
    assert "u1.bn.running_mean" in sd and "u1.bn.running_var" in sd
    assert tb.count_parameters(m) == sum(p.data.size for _, p in m.named_parameters())
    # running statistics are buffers, not parameters
    assert "u1.bn.running_mean" not in names


def test_train_eval_recurse_and_change_batch_norm():
    m = Tiny()
    m.eval()
    assert all(not mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())


def test_freezing_removes_parameters_from_the_optimizer_list():
    m = Tiny()
    n_all = len(m.parameters())
    m.u1.requires_grad_(False)
    assert len(m.parameters()) == n_all - 3
    x = Tensor(np.random.default_rng(0).random((2, 6, 6, 3)).astype(np.float32))
    m(x).sum().backward()
    assert m.u1.conv.weight.grad is None and m.u2.conv.weight.grad is not None


def test_load_state_dict_checks_keys_and_shapes_and_leaves_module_unchanged():
    m, other = Tiny(seed=0), Tiny(seed=1)
    before = {k: v.copy() for k, v in m.state_dict().items()}
    sd = other.state_dict()
    del sd["head.bias"]
    with pytest.raises(ValueError, match="missing keys.*head.bias"):
        m.load_state_dict(sd)
    sd = other.state_dict()
    sd["u1.conv.weight"] = np.zeros((1, 2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="u1.conv.weight.*shape"):
        m.load_state_dict(sd)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    m.load_state_dict(other.state_dict())
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, other.state_dict()[k])


def test_preact_units_compose_bn_activation_conv(rng):
    x = Tensor(rng.standard_normal((2, 5, 5, 4)).astype(np.float32))
    for binary in (True, False):
        u = nn.PreActConv(4, 3, 3, binary=binary, rng=0)
        y = u(x).data
        h = u.bn(x).data
        a = F.sign(h) if binary else np.maximum(h, 0)
        w = u.conv.weight.data
        if binary:
            ref = F.conv2d(Tensor(a), Tensor(F.sign(w)), None, 1, 1).data * F.weight_alpha(w)
        else:
            ref = F.conv2d(Tensor(a), Tensor(w), u.conv.bias, 1, 1).data
        np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
    u = nn.PreActConv(4, 3, 1, binary=True, relu_after_conv=True)
    assert (u(x).data >= 0).all()


def test_real_unit_network_gradcheck_float64(rng):
    m = Tiny(binary=False).to(np.float64)
    x = Tensor(rng.random((2, 5, 5, 3)), requires_grad=True)
    proj = rng.standard_normal((2, 5, 5, 2))
    params = [m.stem.weight, m.u1.conv.weight, m.u2.bn.weight, m.head.bias]
    assert check_grads(lambda x, *p: (m(x) * proj).sum(), [x] + params, max_entries=30) < 1e-5


def test_small_binary_network_overfits_one_batch():
    r = np.random.default_rng(0)
    m = Tiny(binary=True, c=16)
    x = Tensor(r.random((4, 8, 8, 3)).astype(np.float32))
    target = (r.random((4, 8, 8, 2)) > 0.7).astype(np.float32)
    opt = tb.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = tb.losses.sigmoid_bce(m(x), target)
        loss.backward()
        opt.step()
        losses.append(float(loss.data))
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])


def test_checkpoint_round_trip_and_corrupt_files(tmp_path):
    m, other = Tiny(seed=0), Tiny(seed=1)
    path = tmp_path / "ck.npz"
    tb.save(m, path)
    info = tb.load(other, path)
    assert info["meta"]["version"] == 1 and info["meta"]["config"] == m.config
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v, m.state_dict()[k])
    fresh = Tiny(seed=2)
    before = fresh.state_dict()
    data = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    for bad in ("trunc.npz", "junk.npz", "missing.npz"):
        with pytest.raises(ValueError, match=bad):
            tb.load(fresh, tmp_path / bad)
    wrong = Tiny(seed=0, c=12)
    with pytest.raises(ValueError, match="different network"):
        tb.load(wrong, path)
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def test_checkpoint_with_missing_keys_is_rejected(tmp_path):
    m = Tiny()
    sd = {f"state/{k}": v for k, v in m.state_dict().items() if k != "head.bias"}
    from tinybin.serialization import atomic_savez, meta_array
    sd["__tinybin_meta__"] = meta_array("checkpoint", m.config)
    atomic_savez(tmp_path / "partial.npz", sd)
    before = m.state_dict()
    with pytest.raises(ValueError, match="missing keys"):
        tb.load(m, tmp_path / "partial.npz")
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
