"""Beyond the paper: XNOR-Net++ learned scales, PReLU, progressive quantization,
reverse-order initialisation and heatmap distillation -- gradients against finite differences,
packed == float bit for bit for every option, schedules and losses against hand-computed cases."""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinybin as tb
import tinybin.functional as F
from tinybin import Tensor, nn, no_grad
from tinybin.gradcheck import check_grads
from tinybin.train import TrainConfig, Trainer, distillation_loss, quantization_state

from strategies import conv_cases, seeds
from test_packed import randomize_bn

LEARNED = ("learned_channel", "learned_spatial", "learned_rank1")


def _unit_conv(kind, cin, cout, k, stride, pad, hw, seed=0, dtype=np.float64):
    conv = nn.LearnedScaleBinaryConv2d(cin, cout, k, stride, pad, scale=kind, rng=seed)
    if conv.spatial:
        oh = (hw[0] + 2 * pad - k) // stride + 1
        ow = (hw[1] + 2 * pad - k) // stride + 1
        conv.build(oh, ow)
    conv.to(dtype)
    r = np.random.default_rng(seed + 1)
    for name, p in conv.named_parameters():  # move Gamma away from its initial value
        if name != "weight":
            p.data = (p.data * (1 + 0.5 * r.standard_normal(p.shape))).astype(dtype)
    return conv


@pytest.mark.parametrize("kind", LEARNED)
def test_learned_scale_gradients_match_finite_differences(kind, rng):
    conv = _unit_conv(kind, 5, 3, 3, 1, 1, (5, 7))
    x = Tensor(rng.standard_normal((2, 5, 7, 5)), requires_grad=True)
    g = rng.standard_normal((2, 5, 7, 3))
    params = [p for n, p in conv.named_parameters() if n != "weight"]
    assert check_grads(lambda *_: (conv(x) * Tensor(g)).sum(), [x] + params, max_entries=60) < 1e-7


@pytest.mark.parametrize("kind", LEARNED)
def test_learned_scale_weight_gradient_is_straight_through(kind, rng):
    """dL/dW = dL/d sign(W): the gradient of the same conv with sign(W) as a free weight."""
    conv = _unit_conv(kind, 4, 3, 3, 2, 1, (7, 5))
    x = rng.choice([-1.0, 1.0], size=(2, 7, 5, 4))
    g = rng.standard_normal((2, 4, 3, 3))
    (conv(Tensor(x)) * Tensor(g)).sum().backward()
    ws = Tensor(F.sign(conv.weight.data), requires_grad=True)
    (F.mul(F.conv2d(Tensor(x), ws, None, 2, 1), Tensor(conv.scale_array())) * Tensor(g)).sum().backward()
    np.testing.assert_allclose(conv.weight.grad, ws.grad, rtol=1e-12, atol=1e-12)


def test_rank1_and_prelu_gradients(rng):
    a, b, c = (Tensor(rng.standard_normal(n), requires_grad=True) for n in (3, 4, 5))
    g = Tensor(rng.standard_normal((4, 5, 3)))
    assert check_grads(lambda a, b, c: (F.rank1_scale(a, b, c) * g).sum(), [a, b, c]) < 1e-7
    x = rng.standard_normal((2, 3, 3, 4))
    x[np.abs(x) < 0.05] = 0.5  # away from the kink at 0
    xt = Tensor(x, requires_grad=True)
    s = Tensor(rng.random(4), requires_grad=True)
    w = Tensor(rng.standard_normal(x.shape))
    assert check_grads(lambda x, s: (F.prelu(x, s) * w).sum(), [xt, s]) < 1e-7
    np.testing.assert_array_equal(F.prelu_np(np.array([[-2.0, 0.0, 3.0]]), np.array([0.5, 0.5, 0.5])),
                                  [[-1.0, 0.0, 3.0]])


@settings(max_examples=25)
@given(case=conv_cases(kernels=(1, 3), max_c=70, max_hw=7, max_pad=1), kind=st.sampled_from(LEARNED), seed=seeds)
def test_learned_scale_is_integer_conv_times_gamma_and_packs_exactly(case, kind, seed):
    """Odd sizes, channels not multiples of 64: float path == int conv * Gamma == packed unit."""
    xs, ws, stride, pad = case
    r = np.random.default_rng(seed)
    unit = nn.PreActConv(xs[3], ws[0], ws[1], stride, binary=True, scale=kind, rng=seed)
    unit.conv.padding = pad
    if unit.conv.spatial:
        nn.build_scales(unit, xs)
    for name, p in unit.named_parameters():
        if "gamma" in name:
            p.data = (p.data * (1 + r.standard_normal(p.shape))).astype(np.float32)
    randomize_bn(unit, r)
    unit.eval()
    x = r.standard_normal(xs).astype(np.float32)
    with no_grad():
        y = unit(Tensor(x)).data
    sx = F.sign(x * unit.bn.folded()[0] + unit.bn.folded()[1])
    ref = F.conv2d_np(sx, F.sign(unit.conv.weight.data), None, stride, pad) * unit.conv.scale_array()
    np.testing.assert_array_equal(y, ref.astype(np.float32))
    packed = tb.packed.pack_unit(unit)
    np.testing.assert_array_equal(packed(x).data, y)


@pytest.mark.parametrize("kind", LEARNED)
def test_learned_scales_start_as_xnor(kind, rng):
    x = rng.random((2, 32, 32, 3)).astype(np.float32)
    ref = tb.HourGlass(num_landmarks=3, width=32, depth=2, resolution=32, seed=4)
    net = tb.HourGlass(num_landmarks=3, width=32, depth=2, resolution=32, seed=4, scale=kind)
    assert net.config["scale"] == kind and "scale" not in ref.config
    np.testing.assert_array_equal(net(Tensor(x)).data, ref(Tensor(x)).data)
    n_extra = tb.count_parameters(net) - tb.count_parameters(ref)
    units = [m.conv for m in net.modules() if isinstance(m, nn.PreActConv)]
    want = sum(u.out_channels * ({"learned_channel": 1}.get(kind) or
                                 (u.out_hw[0] * u.out_hw[1] if kind == "learned_spatial" else 0))
               + (u.out_channels + sum(u.out_hw) if kind == "learned_rank1" else 0) for u in units)
    assert n_extra == want


def test_spatial_scale_refuses_another_resolution(rng):
    net = tb.HourGlass(num_landmarks=3, width=32, depth=2, resolution=32, scale="learned_spatial")
    unit = net.stem2.paths[0][0]
    with pytest.raises(ValueError, match="built for"):
        unit(Tensor(rng.standard_normal((1, 16, 16, unit.in_channels)).astype(np.float32)))
    with pytest.raises(ValueError, match="binary-unit option"):
        tb.HourGlass(num_landmarks=3, width=32, depth=2, resolution=32, binary=False, scale="learned_channel")
    with pytest.raises(ValueError, match="choose one"):
        tb.HourGlass(num_landmarks=3, width=32, depth=2, resolution=32, prelu=True, relu_after_conv=True)


OPTIONS = [(s, p) for s in ("xnor",) + LEARNED for p in (False, True)]


@pytest.mark.parametrize("scale,prelu", OPTIONS)
def test_packed_equals_float_and_round_trips_for_every_option(scale, prelu, tmp_path, rng):
    net = tb.HourGlass(num_landmarks=4, width=32, depth=2, resolution=32, seed=2, scale=scale, prelu=prelu,
                       stacks=2 if prelu else 1)
    randomize_bn(net, rng)
    for name, p in net.named_parameters():  # trained-looking scales and slopes (some negative)
        if "gamma" in name or name.endswith("act.weight"):
            p.data = (p.data * (1 + rng.standard_normal(p.shape))).astype(np.float32)
    x = rng.random((2, 32, 32, 3)).astype(np.float32)
    net.eval()
    with no_grad():
        ref = [o.data for o in tb.train._as_list(net(Tensor(x)))]
    packed = tb.packed.pack(net)
    out = tb.train._as_list(packed(x))
    for a, b in zip(out, ref):
        np.testing.assert_array_equal(a, b)
    path = tmp_path / "net.packed.npz"
    packed.save(path)
    back = tb.train._as_list(tb.packed.load(path)(x))
    for a, b in zip(back, ref):
        np.testing.assert_array_equal(a, b)
    ck = tmp_path / "ck.npz"
    tb.save(net, ck)
    again = tb.serialization.load_network(ck)
    assert again.config == net.config


def test_packed_loader_validates_the_extra_fields(tmp_path, rng):
    net = randomize_bn(tb.HourGlass(num_landmarks=3, width=32, depth=2, resolution=32, scale="learned_rank1",
                                    prelu=True), rng)
    path = tmp_path / "p.npz"
    tb.packed.pack(net).save(path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert "packed/extra_index" in arrays

    def broken(name, fn):
        a = {k: v.copy() for k, v in arrays.items()}
        fn(a)
        p = tmp_path / f"{name}.npz"
        np.savez(p, **a)
        return p

    cases = {
        "kind": lambda a: a["packed/extra_index"].__setitem__((0, 0), 7),
        "offset": lambda a: a["packed/extra_index"].__setitem__((1, 4), 3),
        "prelu": lambda a: a["packed/extra_index"].__setitem__((0, 3), 0),
        "size": lambda a: a.__setitem__("packed/extra_floats", a["packed/extra_floats"][:-1]),
        "nan": lambda a: a["packed/extra_floats"].__setitem__(0, np.nan),
        "missing": lambda a: a.pop("packed/extra_floats"),
    }
    for name, fn in cases.items():
        with pytest.raises(ValueError):
            tb.packed.load(broken(name, fn))
    # a plain xnor network keeps the old file layout
    plain = tmp_path / "plain.npz"
    tb.packed.pack(randomize_bn(tb.HourGlass(num_landmarks=3, width=32, depth=2, resolution=32), rng)).save(plain)
    with np.load(plain, allow_pickle=False) as z:
        assert "packed/extra_index" not in z.files


def test_packed_bytes_per_option():
    """The packed file grows by the float scales only (reported by benchmarks/bench_beyond.py)."""
    from tinybin.beyond import packed_bytes
    sizes = {opt: packed_bytes(tb.HourGlass(num_landmarks=4, width=32, depth=2, resolution=32,
                                            scale=opt[0], prelu=opt[1])) for opt in OPTIONS}
    base = sizes[("xnor", False)]
    n_units = len(tb.packed.pack(tb.HourGlass(num_landmarks=4, width=32, depth=2, resolution=32)).units())
    # Gamma takes alpha's slot: only the extra index table (6 int64 per unit) and its zip entries
    assert 0 < sizes[("learned_channel", False)] - base < 48 * n_units + 1024
    assert base < sizes[("learned_rank1", False)] < sizes[("learned_spatial", False)]
    assert all(sizes[(s, True)] > sizes[(s, False)] for s in ("xnor",) + LEARNED)


# ---- quantization stages ------------------------------------------------------------------------

def test_quantization_schedule_by_hand():
    c = TrainConfig(steps=20, progressive_steps=8, progressive_stages=4)
    got = [quantization_state(t, c) for t in range(10)]
    assert got[:2] == [("real", "binary", 0.0)] * 2 and got[2] == ("real", "binary", 0.25)
    assert got[6] == ("real", "binary", 0.75) and got[8] is None and got[9] is None
    r = TrainConfig(steps=20, reverse_init_steps=5)
    assert [quantization_state(t, r) for t in (0, 4, 5)] == [("act", "act", 1.0), ("act", "act", 1.0), None]
    both = TrainConfig(steps=20, reverse_init_steps=6, progressive_steps=4, progressive_stages=2)
    assert [quantization_state(t, both) for t in (0, 2, 4, 6, 8, 10)] == [
        ("real", "act", 0.0), ("real", "act", 0.5), ("act", "act", 1.0), ("act", "binary", 0.0),
        ("act", "binary", 0.5), None]
    assert quantization_state(0, TrainConfig()) is None
    with pytest.raises(ValueError, match="fully binary"):
        TrainConfig(steps=10, progressive_steps=10).check()
    with pytest.raises(ValueError, match="must fit"):
        TrainConfig(steps=30, reverse_init_steps=4, progressive_steps=5).check()


def _twins(seed=3, prelu=False):
    b = tb.HourGlass(num_landmarks=3, width=32, depth=2, resolution=32, seed=seed, prelu=prelu)
    r = tb.HourGlass(num_landmarks=3, width=32, depth=2, resolution=32, seed=seed, prelu=prelu, binary=False)
    r.load_state_dict(b.state_dict(), strict=False)  # the real twin's conv biases stay 0
    return b, r


@pytest.mark.parametrize("prelu", [False, True])
def test_progressive_start_is_the_real_twin_and_end_the_binary_net(prelu, rng):
    b, r = _twins(prelu=prelu)
    x = Tensor(rng.random((2, 32, 32, 3)).astype(np.float32))
    binary = b(x).data
    nn.set_quantization(b, ("real", "binary", 0.0))
    np.testing.assert_array_equal(b(x).data, r(x).data)
    nn.set_quantization(b, ("real", "binary", 1.0))
    np.testing.assert_array_equal(b(x).data, binary)
    nn.set_quantization(b, ("real", "binary", 0.5))
    mixed = b(x).data
    assert not np.array_equal(mixed, binary) and not np.array_equal(mixed, r(x).data)
    nn.set_quantization(b, None)
    np.testing.assert_array_equal(b(x).data, binary)


def test_mixed_unit_takes_each_channel_from_one_mode(rng):
    unit = nn.Sequential(nn.PreActConv(6, 8, 3, binary=True, rng=0))
    x = Tensor(rng.standard_normal((1, 5, 5, 6)).astype(np.float32))
    outs = {}
    for state in (("act", "act", 1.0), ("real", "real", 1.0), ("real", "act", 0.5)):
        nn.set_quantization(unit, state)
        outs[state[:2]] = unit(x).data
    u = unit[0]
    hi = u.quant_rank < 4
    np.testing.assert_array_equal(outs[("real", "act")][..., hi], outs[("act", "act")][..., hi])
    np.testing.assert_array_equal(outs[("real", "act")][..., ~hi], outs[("real", "real")][..., ~hi])
    # "act" = binary activations, real weights
    h = F.sign(u.bn(x).data)
    np.testing.assert_allclose(outs[("act", "act")], F.conv2d_np(h, u.conv.weight.data, None, 1, 1), rtol=1e-6)


def test_pack_refuses_a_network_in_a_quantization_stage():
    b, _ = _twins()
    nn.set_quantization(b, ("act", "binary", 0.5))
    with pytest.raises(ValueError, match="fully binary"):
        tb.packed.pack(b)


# ---- distillation -------------------------------------------------------------------------------

def test_distillation_loss_and_gradient_by_hand():
    s = np.array([[[[0.5, -1.0]], [[2.0, 0.0]]]])          # (1, 2, 1, 2) logits
    t = np.array([[[[1.0, -2.0]], [[0.0, 3.0]]]])
    T = 2.0
    p = 1 / (1 + np.exp(-t / T))
    q = 1 / (1 + np.exp(-s / T))
    want = T * T * (-(p * np.log(q) + (1 - p) * np.log(1 - q))).sum() / (1 * 2)  # / (N * K)
    st_ = Tensor(s, requires_grad=True)
    kd = distillation_loss(st_, t, "bce", T)
    np.testing.assert_allclose(kd.data, want, rtol=1e-12)
    kd.backward()
    np.testing.assert_allclose(st_.grad, T * (q - p) / 2, rtol=1e-10)
    assert check_grads(lambda a: distillation_loss(a, t, "bce", T), [Tensor(s, requires_grad=True)]) < 1e-7
    m = distillation_loss(Tensor(s), t, "mse")
    np.testing.assert_allclose(m.data, ((s - t) ** 2).sum() / 2)
    with pytest.raises(ValueError, match="heatmap losses"):
        distillation_loss(Tensor(s), t, "ce")


def test_trainer_distills_from_a_teacher_checkpoint_and_ends_binary(tmp_path):
    from tinybin.data import SyntheticPose
    data = SyntheticPose(16, resolution=32, seed=0)
    teacher = tb.HourGlass(num_landmarks=16, width=16, depth=2, resolution=32, binary=False, seed=1)
    tb.save(teacher, tmp_path / "teacher.npz")
    kw = dict(steps=3, batch_size=2, eval_samples=4, lr=1e-3, lr_end=1e-3)
    losses = {}
    for name, extra in (("plain", {}), ("kd", dict(distill_teacher=str(tmp_path / "teacher.npz"),
                                                   distill_weight=1.0)),
                        ("prog", dict(progressive_steps=1, reverse_init_steps=1))):
        net = tb.HourGlass(num_landmarks=16, width=16, depth=2, resolution=32, seed=2)
        tr = Trainer(net, data, TrainConfig(**kw, **extra), progress=False)
        losses[name] = tr.fit()["loss"]
        assert all(m.quant is None for m in net.modules() if isinstance(m, nn.PreActConv))
    assert losses["kd"][0] > losses["plain"][0]          # the same first batch plus a positive KD term
    w_before = teacher.state_dict()
    tb.load(teacher, tmp_path / "teacher.npz")
    for k, v in teacher.state_dict().items():
        np.testing.assert_array_equal(v, w_before[k])


# ---- the beyond experiment ------------------------------------------------------------------------

def test_beyond_rows_settings_and_gap_closed_by_hand():
    from tinybin import experiments as E
    exp = E.get("beyond")
    assert exp.reference == "baseline" and {r.name for r in exp.rows} >= {
        "baseline", "learned_channel", "learned_spatial", "learned_rank1", "prelu", "progressive",
        "distill", "reverse_init", "all", "real"}
    kw = E.train_settings(exp, exp.row("all"), {"steps": 400})
    assert (kw["progressive_steps"], kw["reverse_init_steps"], kw["distill_teacher"]) == (100, 100, "@real")
    # beyond's ceiling is table3's real hpm run (same_as): that run keeps its weights as the teacher
    assert exp.row("real").same_as == "table3/hpm_real"
    t3 = E.get("table3")
    assert E.is_teacher(t3, t3.row("hpm_real")) and not E.is_teacher(exp, exp.row("baseline"))
    assert not E.is_teacher(t3, t3.row("bottleneck_wider_real"))
    assert E.teacher_path("beyond", "real", 3, "res") == os.path.join("res", ".teachers", "beyond", "real__seed3.npz")

    def row(name, vals, ref):
        d = E.paired_difference(dict(enumerate(vals)), dict(enumerate(ref))) if name != "baseline" else None
        return {"row": name, "diff": {} if d is None else {"pckh": d}}
    base = [50.0, 52.0, 54.0]
    summ = [row("baseline", base, base), row("a", [55.0, 56.0, 60.0], base), row("real", [70.0, 72.0, 74.0], base)]
    got = E.gap_closed(summ, "pckh", "real")
    assert got["baseline"] is None and got["real"]["mean"] == pytest.approx(1.0)
    assert got["a"]["mean"] == pytest.approx(5.0 / 20.0) and got["a"]["gap"] == pytest.approx(20.0)
    d = E.paired_difference({0: 55.0, 1: 56.0, 2: 60.0}, dict(enumerate(base)))
    assert got["a"]["lo"] == pytest.approx(d["lo"] / 20.0)


def test_beyond_claims_by_hand():
    from tinybin import experiments as E
    scores = {"baseline": [50.0, 52.0, 54.0], "learned_rank1": [49.0, 53.0, 55.0],   # +0 +- 1: unresolved
              "prelu": [40.0, 41.0, 43.0],                                          # clearly worse
              "all": [58.0, 59.0, 62.0], "real": [70.0, 72.0, 74.0]}
    results = {k: [{"seed": i, "metrics": {"pckh": v}} for i, v in enumerate(vals)] for k, vals in scores.items()}

    def diff(a, b):
        return E.paired_difference(dict(enumerate(scores[a])), dict(enumerate(scores[b])))
    summ = [{"row": k, "label": k, "diff": {} if k == "baseline" else {"pckh": diff(k, "baseline")}}
            for k in scores]
    claims = E.beyond_claims(summ, results, ("pckh",))
    assert [(c["name"], c["post_hoc"]) for c in claims] == [
        ("learned_rank1", False), ("prelu", False), ("all", False),      # each addition (not the ceiling)
        ("all - learned_rank1", False), ("real - all", False),
        ("all - learned_rank1", True)]         # post hoc: the best single addition here is learned_rank1
    got = {c["name"]: c for c in claims if not c["post_hoc"]}
    assert got["prelu"]["verdict"] == "disagrees"
    assert got["learned_rank1"]["verdict"] == "unresolved"
    assert got["all"]["verdict"] == "agrees"
    c = got["all - learned_rank1"]               # 9, 6, 7: mean 7.33, t(2) = 4.303
    assert c["diff"]["mean"] == pytest.approx(22.0 / 3) and c["verdict"] == "agrees"
    assert c["diff"]["lo"] == pytest.approx(22.0 / 3 - 4.303 * np.std([9, 6, 7], ddof=1) / np.sqrt(3), abs=1e-3)
    assert got["real - all"]["diff"]["mean"] == pytest.approx(37.0 / 3)
    assert all(c["key"] == "pckh" for c in claims)
    table = E.format_beyond_claims(claims)
    assert len(table) == 2 + len(claims)
    assert table[2 + 1].startswith("| prelu helps | pckh | ") and table[2 + 1].endswith(" | disagrees |")
    assert table[-1].endswith("| (no verdict: chosen after the results) |")


def test_progressive_and_reverse_init_runs_resume_exactly(tmp_path):
    from tinybin.data import SyntheticPose
    data = SyntheticPose(16, resolution=32, seed=0)
    cfg = TrainConfig(steps=5, batch_size=2, lr=1e-3, lr_end=1e-3, progressive_steps=2, progressive_stages=2,
                      reverse_init_steps=2, augment=False)

    def net():
        return tb.HourGlass(num_landmarks=16, width=16, depth=2, resolution=32, seed=5, scale="learned_rank1")
    full = Trainer(net(), data, cfg, progress=False).fit()["loss"]
    a = Trainer(net(), data, cfg, progress=False, out_dir=str(tmp_path / "run"))
    for t in range(3):
        a.train_step(t)
        a.step += 1
    a.save_checkpoint()
    b = Trainer(net(), data, cfg, progress=False, out_dir=str(tmp_path / "run"))
    resumed = b.fit()["loss"]
    np.testing.assert_array_equal(resumed, full)


def test_distilling_row_uses_the_shared_real_run_as_teacher(tmp_path):
    """beyond's `real` row is table3's hpm_real run: the distilling row's teacher is that run's
    weights, trained once (first), and beyond/real is its copy."""
    from tinybin import experiments as E
    out = E.run(["beyond:distill,real"], seeds=1, quick=True, root=str(tmp_path), progress=False)
    assert [(r["experiment"], r["row"]) for r in out] == [("beyond", "distill"), ("beyond", "real")]
    teacher = tmp_path / ".teachers" / "table3" / "hpm_real__seed0.npz"
    assert teacher.exists() and out[0]["train_config"]["distill_teacher"] == str(teacher)
    assert (tmp_path / "table3" / "hpm_real__seed0.json").exists()
    assert out[1]["same_as"] == "table3/hpm_real" and not (tmp_path / ".teachers" / "beyond").exists()


def test_beyond_face_row_reuses_the_face_runs_and_their_teacher():
    from tinybin import experiments as E
    exp, face = E.get("beyond_face"), E.get("face")
    assert exp.row("baseline").same_as == "face/face_hpm_binary" and exp.row("real").same_as == "face/face_hpm_real"
    assert E.is_teacher(face, face.row("face_hpm_real")) and not E.is_teacher(face, face.row("face_hpm_binary"))
    beyond_all = E.get("beyond").row("all")
    assert exp.row("all").train == beyond_all.train  # the same combination as the pose row
    assert {k: v for k, v in exp.row("all").net.items() if k != "num_landmarks"} == beyond_all.net
