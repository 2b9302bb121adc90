"""Hardening: every numbered fault of an outside test campaign, reproduced and fixed.

Grouped by item: 1 divergence, 2 memory, 3 packed index, 4 resume settings, 5 output folder,
6 image modes, 7 float64 / array-like images, 8 one-line errors, 9 values that must be refused,
10 smaller file-handling faults. The hypothesis fuzz test of checkpoint and packed files lives in
tests/test_serialization_fuzz.py.
"""
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import tinybin as tb
from tinybin import packed, serialization as S
from tinybin.train import TrainConfig, Trainer


def tiny_net(seed=0, **kw):
    cfg = dict(num_landmarks=3, block="hpm", binary=True, width=16, depth=1, resolution=16, seed=seed)
    cfg.update(kw)
    return tb.HourGlass(**cfg)


class ToyPoses:
    """A minimal dataset (the Trainer's interface): random images, 3 landmarks, all visible."""
    kind = "pose"

    def __init__(self, n=8, resolution=16, seed=0, difficulty=0.5):
        self.n, self.resolution, self.seed, self.difficulty = n, resolution, seed, difficulty

    def __len__(self):
        return self.n

    def batch(self, indices, augment=False, rng=None):
        idx = np.asarray(list(indices))
        r = np.random.default_rng([self.seed, *idx.tolist()])
        R, B = self.resolution, len(idx)
        return {"image": r.random((B, R, R, 3)).astype(np.float32),
                "points": (r.random((B, 3, 2)) * (R - 1)).astype(np.float32),
                "visible": np.ones((B, 3), np.float32), "head_size": np.full(B, R / 4, np.float32)}


def rewrite(src, dst, change):
    """Copy an .npz with `change(arrays)` applied to its dict of arrays (a hostile edit)."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(dst, "wb") as fh:
        np.savez(fh, **arrays)
    return dst


def set_meta(arrays, edit):
    meta = json.loads(str(arrays["__tinybin_meta__"]))
    meta = edit(meta)
    arrays["__tinybin_meta__"] = np.array(meta if isinstance(meta, str) else json.dumps(meta))


def outputs(net, x):
    net.eval()
    with tb.no_grad():
        return net(tb.Tensor(x)).data


# ---- 1. divergence ----------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["parameter", "optimizer state"])
def test_divergence_stops_naming_the_tensor_and_keeps_the_last_good_checkpoint(tmp_path, where):
    cfg = TrainConfig(steps=6, batch_size=2, lr=1e-3, lr_end=1e-3, ckpt_every=2)
    tr = Trainer(tiny_net(), ToyPoses(), cfg, out_dir=str(tmp_path), progress=False)
    step = tr.opt.step

    def poisoned():
        step()
        if tr.step == 3:  # a NaN appears during step 3; sign(NaN) = -1 would hide it from the loss
            if where == "parameter":
                tr.net.stacks[0].lin.conv.weight.data[0, 0, 0, 0] = np.nan
            else:
                moments = next(s for s in tr.opt.state if s)  # RMSprop's running average of g^2
                next(iter(moments.values()))[...] = np.inf
    tr.opt.step = poisoned
    with pytest.raises(FloatingPointError, match=f"step 3: {where}.*NaN or Inf.*kept \\(step 2\\)"):
        tr.fit()
    net = tiny_net(seed=5)
    info = tb.load(net, tmp_path / "checkpoint.npz")  # still loadable, and resumable
    assert int(info["extra"]["step"]) == 2
    assert all(np.isfinite(p.data).all() for p in net.parameters())


def test_save_refuses_what_load_refuses(tmp_path):
    for name, poison in [("nan", np.nan), ("inf", np.inf)]:
        net = tiny_net()
        net.conv1.weight.data[0, 0, 0, 0] = poison
        with pytest.raises(ValueError, match="NaN or Inf"):
            tb.save(net, tmp_path / f"{name}.npz")
        assert not (tmp_path / f"{name}.npz").exists()
    net = tiny_net().to(np.float64)
    net.conv1.weight.data[0, 0, 0, 0] = 1e300
    with pytest.raises(ValueError, match="float32 range"):
        tb.save(net, tmp_path / "big.npz")
    net = tiny_net()
    net.bn1.running_var[0] = -1.0
    with pytest.raises(ValueError, match="negative"):
        tb.save(net, tmp_path / "var.npz")
    with pytest.raises(ValueError, match="NaN or Inf"):
        tb.save(tiny_net(), tmp_path / "x.npz", extra={"opt/m": np.array([np.nan])})
    with pytest.raises(ValueError, match="JSON"):
        tb.save(tiny_net(), tmp_path / "x.npz", meta={"score": float("nan")})
    assert not [f for f in os.listdir(tmp_path)]


# ---- 2. a tiny file must not exhaust memory ---------------------------------------------------

HUGE = dict(width=4096, stacks=64, resolution=16384)


def test_huge_configs_are_refused_before_building(tmp_path):
    net = tiny_net()
    tb.save(net, tmp_path / "ck.npz")
    packed.pack(net).save(tmp_path / "p.npz")
    for src in ("ck.npz", "p.npz"):
        dst = rewrite(tmp_path / src, tmp_path / f"huge-{src}",
                      lambda a: set_meta(a, lambda m: {**m, "config": {**m["config"], **HUGE}}))
        with pytest.raises(ValueError, match="outside the limits"):
            (packed.load if src == "p.npz" else S.load_network)(dst)
    # within every per-value limit, but the network would be far larger than the file
    big = dict(width=256, stacks=2, depth=4, resolution=256)
    for src in ("ck.npz", "p.npz"):
        dst = rewrite(tmp_path / src, tmp_path / f"big-{src}",
                      lambda a: set_meta(a, lambda m: {**m, "config": {**m["config"], **big}}))
        with pytest.raises(ValueError, match="file holds only"):
            (packed.load if src == "p.npz" else S.load_network)(dst)


def test_estimate_bounds_the_real_size():
    from tinybin.models import HourGlass
    cases = [dict(block=b, block_opts=o, width=F, depth=D, stacks=St, improved=imp, num_landmarks=L)
             for b, o in [("hpm", None), ("hpm", {"depth": 6}), ("hpm", {"cardinality": 4}), ("bottleneck", None),
                          ("bottleneck", {"mid_ratio": 2.0}), ("wide", None), ("multiscale", None),
                          ("multiscale_no1x1", None), ("wide_no1x1", None)]
             for F, D, St, imp, L in [(16, 1, 1, False, 68), (64, 3, 2, True, 1), (32, 2, 3, False, 16)]]
    built = 0
    for kw in cases:
        try:
            net = HourGlass(resolution=64, **kw)
        except ValueError:  # a width the block cannot split
            continue
        built += 1
        n = sum(v.size for v in net.state_dict().values())
        est, _ = S.estimate_size(net.config)
        assert n <= est <= 16 * n, (kw, n, est)
    assert built >= 20


def write_npy_member(zf, name, header_shape, dtype="<f4", payload=b""):
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (dtype, header_shape)
    hdr = hdr + " " * (63 - (10 + len(hdr)) % 64) + "\n"
    data = b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr.encode() + payload
    zf.writestr(name + ".npy", data)


def test_npy_header_declaring_32_gib_is_refused_without_allocating(tmp_path):
    net = tiny_net()
    tb.save(net, tmp_path / "ck.npz")
    with np.load(tmp_path / "ck.npz") as z:
        arrays = {k: z[k] for k in z.files}
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as zf:
        for k, v in arrays.items():
            buf = io.BytesIO()
            np.save(buf, v)
            zf.writestr(k + ".npy", buf.getvalue())
        write_npy_member(zf, "extra/huge", (2 ** 33,), payload=b"\0" * 64)
    with pytest.raises(ValueError, match="extra/huge.*declares shape"):
        tb.load(tiny_net(), bad)


def test_compressed_bomb_entry_is_refused_before_reading(tmp_path):
    net = tiny_net()
    tb.save(net, tmp_path / "ck.npz")
    with np.load(tmp_path / "ck.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["extra/zeros"] = np.zeros(4 << 20, np.float32)  # 16 MB of zeros: ~16 KB deflated
    with open(tmp_path / "bomb.npz", "wb") as fh:
        np.savez_compressed(fh, **arrays)
    with pytest.raises(ValueError, match="compression bomb"):
        tb.load(tiny_net(), tmp_path / "bomb.npz")


def test_declared_sizes_are_capped_before_reading(tmp_path, monkeypatch):
    net = tiny_net()
    tb.save(net, tmp_path / "ck.npz", extra={"junk": np.zeros(100_000, np.float32)})
    with S.NpzReader(tmp_path / "ck.npz") as z:
        with pytest.raises(ValueError, match="more than 1,000"):
            z.check_cap(1000, "a test")
    read = []
    monkeypatch.setattr(S.NpzReader, "read", lambda self, name: read.append(name))
    with pytest.raises(ValueError, match="more than"):
        S.read_npz(tmp_path / "ck.npz", max_bytes=10_000)
    assert read == []  # refused from the headers alone


# ---- 3. the packed index table -----------------------------------------------------------------

@pytest.fixture(scope="module")
def packed_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("packed")
    rng = np.random.default_rng(0)
    net = tiny_net(seed=1)
    for m in net.modules():
        if isinstance(m, tb.nn.BatchNorm2d):
            m.running_mean[...] = rng.standard_normal(m.num_features) * 0.3
            m.running_var[...] = rng.random(m.num_features) + 0.5
    p = packed.pack(net)
    p.save(d / "p.npz")
    x = rng.random((2, 16, 16, 3)).astype(np.float32)
    return d, p(x), x


def edit_index(row, col, value):
    def change(a):
        idx = a["packed/index"].copy()
        idx[row, col] = value
        a["packed/index"] = idx
    return change


@pytest.mark.parametrize("name,change,match", [
    ("relu", edit_index(0, 5, 1), "relu_after_conv"),
    ("relu2", edit_index(0, 5, 2), "relu_after_conv"),
    ("stride", edit_index(1, 3, 7), "stride"),
    ("padding", edit_index(1, 4, 100), "padding"),
    ("same-offsets", lambda a: edit_index(1, 6, a["packed/index"][0, 6])(a), "offsets"),
    ("negative-offset", edit_index(0, 8, -5), "offsets"),
    ("float-index", lambda a: a.update({"packed/index": a["packed/index"].astype(np.float64)}), "integer"),
    ("int-floats", lambda a: a.update({"packed/floats": a["packed/floats"].astype(np.int32)}), "float32"),
    ("f64-floats", lambda a: a.update({"packed/floats": a["packed/floats"].astype(np.float64)}), "float32"),
    ("dup-names", lambda a: set_meta(a, lambda m: {**m, "units": [m["units"][0]] * len(m["units"])}),
     "not unique"),
    ("swapped-names", lambda a: set_meta(a, lambda m: {**m, "units": m["units"][::-1]}), "wrong|inconsistent"),
    ("extra-words", lambda a: a.update({"packed/w_bits": np.concatenate([a["packed/w_bits"],
                                                                         np.zeros(3, np.uint64)])}), "words"),
    ("nan-floats", lambda a: a["packed/floats"].__setitem__(0, np.nan), "NaN"),
    ("neg-alpha", lambda a: a["packed/floats"].__setitem__(a["packed/index"][0, 0] * 2, -1.0), "alpha"),
    ("tail-bits", lambda a: a["packed/w_bits"].__setitem__(0, np.uint64(2 ** 63)), "beyond"),
    ("neg-var", lambda a: a.update({k: -np.abs(v) - 1 for k, v in a.items() if k.endswith("running_var")}),
     "negative"),
])
def test_packed_index_table_is_validated(packed_file, name, change, match):
    d, _, _ = packed_file
    dst = rewrite(d / "p.npz", d / f"{name}.npz", change)
    with pytest.raises(ValueError, match=match):
        packed.load(dst)


def test_valid_packed_file_still_loads_equal(packed_file):
    d, y, x = packed_file
    np.testing.assert_array_equal(packed.load(d / "p.npz")(x), y)


# ---- 4. resuming with other settings -----------------------------------------------------------

@pytest.mark.parametrize("change", [dict(lr_end=2e-4), dict(steps=1), dict(batch_size=3), dict(ckpt_every=3)])
def test_resume_refuses_a_different_train_setting(tmp_path, change):
    base = dict(steps=2, batch_size=2, lr=1e-3, lr_end=5e-4, ckpt_every=1)
    Trainer(tiny_net(), ToyPoses(), TrainConfig(**base), out_dir=str(tmp_path), progress=False).fit()
    before = tb.load(tiny_net(seed=3), tmp_path / "checkpoint.npz")["extra"]["step"]
    t = Trainer(tiny_net(seed=4), ToyPoses(), TrainConfig(**{**base, **change}), out_dir=str(tmp_path),
                progress=False)
    key = next(iter(change))
    with pytest.raises(ValueError, match=f"train.{key}"):
        t.fit()
    assert t.step == 0 and int(tb.load(tiny_net(), tmp_path / "checkpoint.npz")["extra"]["step"]) == before


@pytest.mark.parametrize("change", [dict(difficulty=0.3), dict(n=9), dict(seed=1), dict(resolution=32)])
def test_resume_refuses_different_data(tmp_path, change):
    cfg = TrainConfig(steps=2, batch_size=2)
    Trainer(tiny_net(), ToyPoses(), cfg, out_dir=str(tmp_path), progress=False).fit()
    t = Trainer(tiny_net(), ToyPoses(**change), cfg, out_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match=f"data.{next(iter(change))}"):
        t.fit()


def test_a_larger_steps_extends_a_finished_run(tmp_path):
    cfg = TrainConfig(steps=2, batch_size=2, lr=1e-3, lr_end=1e-3)
    Trainer(tiny_net(), ToyPoses(), cfg, out_dir=str(tmp_path), progress=False).fit()
    t = Trainer(tiny_net(), ToyPoses(), TrainConfig(steps=4, batch_size=2, lr=1e-3, lr_end=1e-3),
                out_dir=str(tmp_path), progress=False)
    h = t.fit()
    assert t.step == 4 and h["step"] == [0, 1, 2, 3]


def test_a_plain_save_file_is_not_a_run_checkpoint(tmp_path):
    tb.save(tiny_net(seed=1), tmp_path / "checkpoint.npz")
    t = Trainer(tiny_net(seed=2), ToyPoses(), TrainConfig(steps=2, batch_size=2), out_dir=str(tmp_path),
                progress=False)
    before = {k: v.copy() for k, v in t.net.state_dict().items()}
    with pytest.raises(ValueError, match="not a training-run checkpoint"):
        t.fit()
    for k, v in t.net.state_dict().items():  # refused before any weight was loaded
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("bad", [dict(lr=float("inf")), dict(lr=float("nan")), dict(lr_end=-1.0), dict(steps=-1),
                                 dict(clip_latent=-0.5), dict(ckpt_every=-1), dict(batch_size=0),
                                 dict(batch_size=-4)])
def test_train_config_values_are_checked(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        Trainer(tiny_net(), ToyPoses(), TrainConfig(**bad), progress=False)


# ---- 5. output folder --------------------------------------------------------------------------

def test_an_output_folder_that_is_a_file_fails_before_training(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    for out in (f, f / "sub"):
        with pytest.raises(ValueError, match="is a file"):
            Trainer(tiny_net(), ToyPoses(), TrainConfig(steps=50, batch_size=2, ckpt_every=0),
                    out_dir=str(out), progress=False)


# ---- 6. images of every PIL mode ----------------------------------------------------------------

def pil(tmp_path, name, im, fmt):
    path = tmp_path / name
    im.save(path, fmt)
    return path


def test_images_of_every_mode_map_their_full_range(tmp_path):
    from PIL import Image
    from tinybin.images import read_image
    g16 = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)
    a = read_image(pil(tmp_path, "g16.png", Image.fromarray(g16), "PNG"))
    assert a.dtype == np.float32 and a.shape == (16, 16, 3)
    np.testing.assert_allclose(a[..., 0], g16 / 65535.0, atol=1e-7)
    assert (a[..., 0] == 1.0).mean() < 0.01  # was 99.6% with convert("RGB")
    f = read_image(pil(tmp_path, "half.tiff", Image.fromarray(np.full((4, 5), 0.5, np.float32)), "TIFF"))
    np.testing.assert_array_equal(f, np.full((4, 5, 3), 0.5, np.float32))
    i32 = read_image(pil(tmp_path, "i.tiff", Image.fromarray((g16.astype(np.int32))), "TIFF"))
    np.testing.assert_allclose(i32[..., 1], g16 / 65535.0, atol=1e-7)
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_allclose(read_image(pil(tmp_path, "l.png", Image.fromarray(grey), "PNG"))[..., 2], grey / 255)
    pal = Image.fromarray(grey).convert("P")
    assert read_image(pil(tmp_path, "p.png", pal, "PNG")).shape == (16, 16, 3)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = [255, 0, 0, 255]      # opaque red
    rgba[0, 1] = [0, 0, 0, 0]          # transparent: white background
    rgba[1, 0] = [0, 0, 0, 128]        # half-transparent black
    im = read_image(pil(tmp_path, "a.png", Image.fromarray(rgba, "RGBA"), "PNG"))
    np.testing.assert_allclose(im[0, 0], [1, 0, 0])
    np.testing.assert_allclose(im[0, 1], [1, 1, 1])
    np.testing.assert_allclose(im[1, 0], [127 / 255] * 3, atol=1e-6)
    la = read_image(pil(tmp_path, "la.png", Image.fromarray(rgba[..., [0, 3]], "LA"), "PNG"))
    np.testing.assert_allclose(la[0, 1], [1, 1, 1])
    b = read_image(pil(tmp_path, "b.png", Image.fromarray(grey > 100), "PNG"))
    assert set(np.unique(b)) == {0.0, 1.0}


def test_bad_images_are_refused_clearly(tmp_path):
    from PIL import Image
    from tinybin.images import read_image
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        read_image(pil(tmp_path, "f.tiff", Image.fromarray(np.full((3, 3), 2.5, np.float32)), "TIFF"))
    with pytest.raises(ValueError, match="16-bit"):
        read_image(pil(tmp_path, "i.tiff", Image.fromarray(np.full((3, 3), -7, np.int32)), "TIFF"))
    (tmp_path / "t.png").write_text("hello")
    with pytest.raises(ValueError, match="cannot read"):
        read_image(tmp_path / "t.png")


def test_decompression_bomb_is_a_clear_error(tmp_path, monkeypatch):
    from PIL import Image
    from tinybin.images import read_image
    path = pil(tmp_path, "big.png", Image.new("L", (64, 64)), "PNG")
    for limit in (64 * 64 - 1, 64 * 64 // 3):  # the warning and the error of PIL
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(ValueError, match="too large"):
            read_image(path)


# ---- 7. float64 and array-likes -----------------------------------------------------------------

def test_float64_and_nested_lists_are_accepted_as_images():
    from tinybin.train import predict
    net = tiny_net()
    x = np.random.default_rng(0).random((2, 16, 16, 3))
    ref = outputs(net, x.astype(np.float32))
    np.testing.assert_array_equal(outputs(net, x), ref)
    np.testing.assert_array_equal(outputs(net, x.tolist()), ref)
    p = packed.pack(net)
    np.testing.assert_array_equal(p(x), p(x.astype(np.float32)))
    np.testing.assert_array_equal(p(x.tolist()), p(x.astype(np.float32)))
    np.testing.assert_array_equal(predict(net, x), predict(net, x.astype(np.float32)))
    with pytest.raises(ValueError, match="empty"):
        predict(net, np.zeros((0, 16, 16, 3)))


# ---- 8. metadata and checkpoints that used to give tracebacks --------------------------------------

@pytest.mark.parametrize("name,edit,match", [
    ("list", lambda m: [1, 2], "JSON list"),
    ("string", lambda m: json.dumps("checkpoint"), "JSON str"),
    ("null-version", lambda m: {**m, "version": None}, "version"),
    ("str-version", lambda m: {**m, "version": "1"}, "version"),
    ("newer", lambda m: {**m, "version": 99}, "newer"),
    ("config-list", lambda m: {**m, "config": [1]}, "config"),
    ("deep", lambda m: "[" * 100_000 + "]" * 100_000, "nested"),
    ("deep-ok-json", lambda m: {**m, "x": json.loads("[" * 40 + "]" * 40)}, "nested"),
    ("nan", lambda m: json.dumps(m)[:-1] + ', "x": NaN}', "non-finite"),
    ("garbage", lambda m: "{not json", "corrupt"),
])
def test_bad_metadata_is_one_clear_error(tmp_path, name, edit, match):
    tb.save(tiny_net(), tmp_path / "ck.npz")
    dst = rewrite(tmp_path / "ck.npz", tmp_path / f"{name}.npz", lambda a: set_meta(a, edit))
    for loader in (lambda p: tb.load(tiny_net(), p), S.load_network, S.read_config):
        with pytest.raises(ValueError, match=match):
            loader(dst)


def test_metadata_of_the_wrong_dtype_is_refused(tmp_path):
    tb.save(tiny_net(), tmp_path / "ck.npz")
    dst = rewrite(tmp_path / "ck.npz", tmp_path / "m.npz", lambda a: a.update({"__tinybin_meta__": np.arange(3)}))
    with pytest.raises(ValueError, match="metadata entry"):
        tb.load(tiny_net(), dst)


def test_a_text_file_as_checkpoint_says_so(tmp_path):
    (tmp_path / "notes.txt").write_text("these are my notes\n" * 10)
    with pytest.raises(ValueError, match="text file") as e:
        tb.load(tiny_net(), tmp_path / "notes.txt")
    assert "allow_pickle" not in str(e.value)


# ---- 9. values that must be refused --------------------------------------------------------------

@pytest.mark.parametrize("name,change,match", [
    ("neg-var", lambda a: a.update({"state/bn1.running_var": -np.ones_like(a["state/bn1.running_var"])}), "negative"),
    ("1e300", lambda a: a.update({"state/conv1.weight": np.full(a["state/conv1.weight"].shape, 1e300)}), "float32 range"),
    ("int-weight", lambda a: a.update({"state/conv1.weight": a["state/conv1.weight"].astype(np.int32)}), "dtype"),
    ("nan-extra", lambda a: a.update({"extra/opt/x": np.array([np.nan])}), "NaN"),
    ("object", lambda a: a.update({"extra/s": np.array(["a", "b"])}), None),
])
def test_bad_values_are_refused_and_the_module_is_untouched(tmp_path, name, change, match):
    tb.save(tiny_net(), tmp_path / "ck.npz")
    dst = rewrite(tmp_path / "ck.npz", tmp_path / f"{name}.npz", change)
    net = tiny_net(seed=7)
    before = {k: v.copy() for k, v in net.state_dict().items()}
    if match is None:  # a string array is not harmful: it loads
        tb.load(net, dst)
        return
    with pytest.raises(ValueError, match=match):
        tb.load(net, dst)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


# ---- 10. file modes, symlinks, temp files, JSON ---------------------------------------------------

def test_saved_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        tb.save(tiny_net(), tmp_path / "a.npz")
        S.write_json(tmp_path / "a.json", {"x": 1})
        os.umask(0o077)
        tb.save(tiny_net(), tmp_path / "b.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.npz").stat().st_mode & 0o777 == 0o600


def test_a_symlink_is_written_through(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "ck.npz"
    tb.save(tiny_net(seed=1), target)
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    tb.save(tiny_net(seed=2), link)
    assert link.is_symlink()
    net = tiny_net(seed=9)
    tb.load(net, target)
    np.testing.assert_array_equal(net.conv1.weight.data, tiny_net(seed=2).conv1.weight.data)


def test_temp_files_of_a_killed_writer_are_cleaned_on_the_next_write(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".tmp-ck.npz-{dead.pid}-abc123.npz"
    stale.write_bytes(b"half a checkpoint")
    live = tmp_path / f".tmp-ck.npz-{os.getppid()}-def456.npz"  # a live writer's file stays
    live.write_bytes(b"in progress")
    other = tmp_path / f".tmp-other.npz-{dead.pid}-x.npz"      # another path's: not ours to clean
    other.write_bytes(b"x")
    tb.save(tiny_net(), tmp_path / "ck.npz")
    assert not stale.exists() and live.exists() and other.exists()


def test_json_results_hold_no_bare_nan(tmp_path):
    S.write_json(tmp_path / "r.json", {"nme": float("nan"), "v": [1.0, float("inf"), np.float32(2)],
                                       "a": np.array([np.nan, 1.0])})
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"nme": None, "v": [1.0, None, 2.0], "a": [None, 1.0]}


# ---- 8 / 10. the command line: one `error:` line, exit status 2 ------------------------------------

from tinybin.__main__ import main  # noqa: E402

TINY_TRAIN = ["train", "--width", "16", "--depth", "1", "--resolution", "16", "--steps", "1", "--n-train", "4",
              "--n-test", "2", "--batch-size", "2", "--no-progress"]


def error_lines(capsys):
    err = capsys.readouterr().err
    return [ln for ln in err.splitlines() if "error:" in ln], err


@pytest.mark.parametrize("argv,flag", [
    (["train", "--lr-end", "-1"], "--lr-end"), (["train", "--lr", "inf"], "--lr"), (["train", "--lr", "nan"], "--lr"),
    (["train", "--steps", "-3"], "--steps"), (["train", "--clip-latent", "-0.5"], "--clip-latent"),
    (["train", "--ckpt-every", "-1"], "--ckpt-every"), (["train", "--batch-size", "-4"], "--batch-size"),
    (["train", "--difficulty", "2"], "--difficulty"), (["bench", "--repeats", "0"], "--repeats"),
    (["demo", "--steps", "0"], "--steps"), (["eval", "--checkpoint", "x", "--n", "0"], "--n"),
    (["predict", "img.png", "--checkpoint", "x", "--scale", "-1"], "--scale"),
    (["train", "--width", "0"], "--width"),
])
def test_cli_misuse_is_one_error_line_naming_the_flag(capsys, argv, flag):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    lines, err = error_lines(capsys)
    assert len(lines) == 1 and flag in lines[0], err
    assert "Traceback" not in err


def test_ctrl_c_during_cli_training_saves_the_step_and_the_same_command_resumes(tmp_path, capsys, monkeypatch):
    import signal
    from tinybin.train import Trainer
    argv = TINY_TRAIN + ["--steps", "4", "--out", str(tmp_path / "run")]
    plain = Trainer.train_step

    def ctrl_c_in_step_1(self, step):
        if step == 1:
            signal.raise_signal(signal.SIGINT)
        return plain(self, step)
    monkeypatch.setattr(Trainer, "train_step", ctrl_c_in_step_1)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "after step 2" in err and "checkpoint.npz" in err and "resumes" in err and "Traceback" not in err, err
    with open(tmp_path / "run" / "history.json") as fh:
        assert json.load(fh)["step"] == [0, 1]  # step 1 finished; nothing after it ran
    monkeypatch.undo()
    assert main(argv) == 0
    with open(tmp_path / "run" / "history.json") as fh:
        assert json.load(fh)["step"] == [0, 1, 2, 3]


def test_cli_unknown_flag_prints_the_subcommand_usage(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--bogus"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "usage: " in err and " train " in err.splitlines()[0] and "--bogus" in err


def test_cli_prog_name_and_defaults_in_help(monkeypatch, capsys):
    from tinybin.__main__ import build_parser, train_config
    from tinybin.experiments import DATA, recommended
    from tinybin.train import TrainConfig
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/tinybin"])
    ap = build_parser()
    assert ap.prog == "tinybin"
    t = ap._commands["train"]
    opts = {a.dest: a.default for a in t._actions}
    assert (opts["difficulty"], opts["n_train"], opts["n_test"]) == (DATA["difficulty"], DATA["n_train"], DATA["n_test"])
    assert "no_progress" in opts
    help_text = " ".join(t.format_help().split())
    b, r = recommended(True), recommended(False)
    assert f"binary {b['lr']:g}, real {r['lr']:g}" in help_text or b["lr"] == r["lr"]
    assert "usage: tinybin train" in help_text
    # no flags: the calibrated recipe of the network's kind; flags on top (--lr alone: lr_end = lr / 5)
    for real in (False, True):
        a = ap.parse_args(["train"] + (["--real"] if real else []))
        want = TrainConfig.recommended(binary=not real, ckpt_every=a.ckpt_every, eval_every=0, loss="bce")
        assert train_config(a, "bce") == want
    a = ap.parse_args(["train", "--lr", "0.002", "--steps", "7", "--clip-latent", "0"])
    cfg = train_config(a, "bce")
    assert (cfg.lr, cfg.lr_end, cfg.steps, cfg.clip_latent) == (0.002, pytest.approx(0.0004), 7, None)
    monkeypatch.setattr(sys, "argv", ["/x/tinybin/__main__.py"])
    assert build_parser().prog == "python -m tinybin"


@pytest.fixture(scope="module")
def run_ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    assert main(TINY_TRAIN + ["--out", str(d)]) == 0
    return d / "checkpoint.npz"


def test_cli_file_faults_are_one_line(tmp_path, capsys, run_ckpt):
    capsys.readouterr()
    rewrite(run_ckpt, tmp_path / "list.npz", lambda a: set_meta(a, lambda m: [1, 2]))
    rewrite(run_ckpt, tmp_path / "null.npz", lambda a: set_meta(a, lambda m: {**m, "version": None}))
    (tmp_path / "text.npz").write_text("just some notes\n")
    for bad in ("list.npz", "null.npz", "text.npz"):
        assert main(["eval", "--checkpoint", str(tmp_path / bad), "--n", "2"]) == 2
        lines, err = error_lines(capsys)
        assert len(lines) == 1 and bad in lines[0] and "Traceback" not in err, err
    # a plain tb.save file in the run folder: refused before training, the file is untouched
    (tmp_path / "run").mkdir()
    net = tb.HourGlass(num_landmarks=16, block="hpm", width=16, depth=1, resolution=16)
    tb.save(net, tmp_path / "run" / "checkpoint.npz")
    before = (tmp_path / "run" / "checkpoint.npz").read_bytes()
    assert main(TINY_TRAIN + ["--out", str(tmp_path / "run")]) == 2
    lines, _ = error_lines(capsys)
    assert len(lines) == 1 and "not a training-run checkpoint" in lines[0]
    assert (tmp_path / "run" / "checkpoint.npz").read_bytes() == before
    # resuming with another data setting names it
    assert main(TINY_TRAIN + ["--out", str(run_ckpt.parent), "--difficulty", "0.9"]) == 2
    lines, _ = error_lines(capsys)
    assert len(lines) == 1 and "data.difficulty" in lines[0]
    # an output folder that is a file
    assert main(TINY_TRAIN + ["--out", str(tmp_path / "text.npz")]) == 2
    lines, _ = error_lines(capsys)
    assert len(lines) == 1 and "is a file" in lines[0]


def test_cli_eval_json_records_the_data_and_is_valid_json(capsys, run_ckpt):
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run_ckpt), "--n", "3", "--seed", "5", "--difficulty", "0.4"]) == 0
    res = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert res["data"] == {"kind": "pose", "n": 3, "resolution": 16, "difficulty": 0.4, "seed": 5, "split": "test"}
    from tinybin.__main__ import _print_json
    _print_json({"nme": float("nan"), "v": [np.float32(np.inf), 1.0]})
    assert json.loads(capsys.readouterr().out) == {"nme": None, "v": [None, 1.0]}


def test_cli_predict_names_outputs_warns_once_and_names_joints(tmp_path, capsys, run_ckpt):
    from PIL import Image
    from tinybin.skeletons import MPII_JOINTS
    photo = tmp_path / "photos" / "photo.jpg"
    photo.parent.mkdir()
    Image.fromarray((np.random.default_rng(0).random((40, 30, 3)) * 255).astype(np.uint8)).save(photo)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["predict", str(photo), "--checkpoint", str(run_ckpt)]) == 0
    finally:
        os.chdir(cwd)
    assert (photo.parent / "photo.landmarks.png").exists() and (photo.parent / "photo.landmarks.json").exists()
    assert not (tmp_path / "photo.jpg.png").exists()
    err = capsys.readouterr().err
    assert err.count("teaching model") == 1
    data = json.loads((photo.parent / "photo.landmarks.json").read_text())
    assert data["names"] == list(MPII_JOINTS) and len(data["points"]) == 16
    assert main(["predict", str(photo), "--checkpoint", str(run_ckpt), "--out", str(tmp_path / "gh.v2")]) == 0
    assert (tmp_path / "gh.v2.png").exists() and (tmp_path / "gh.v2.json").exists()
    capsys.readouterr()
    # a missing output folder is found before the checkpoint is even read
    assert main(["predict", str(photo), "--checkpoint", "missing.npz", "--out", str(tmp_path / "nope" / "x")]) == 2
    lines, _ = error_lines(capsys)
    assert len(lines) == 1 and "does not exist" in lines[0] and "nope" in lines[0]


def test_cli_predict_refuses_a_decompression_bomb(tmp_path, capsys, run_ckpt, monkeypatch):
    from PIL import Image
    Image.new("RGB", (64, 64)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "bomb.png"), "--checkpoint", str(run_ckpt),
                 "--out", str(tmp_path / "o")]) == 2
    lines, _ = error_lines(capsys)
    assert len(lines) == 1 and "too large" in lines[0]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow that makes the run diverge
def test_cli_divergence_is_one_error_line(tmp_path, capsys):
    capsys.readouterr()
    assert main(TINY_TRAIN + ["--lr", "1e30", "--lr-end", "1e30", "--steps", "3", "--out", str(tmp_path)]) == 1
    lines, err = error_lines(capsys)
    assert len(lines) == 1 and "diverged at step" in lines[0], err


# ---- 9. loaders skip or refuse invalid values -------------------------------------------------------

def _mpii_json(tmp_path, records, name="mpii.json"):
    path = tmp_path / name
    path.write_text(json.dumps(records))
    return path


def _person(**kw):
    rec = {"image": "a.jpg", "center": [50.0, 60.0], "scale": 1.5,
           "joints": [[10.0 + j, 20.0 + j] for j in range(16)], "joints_vis": [1] * 16}
    rec.update(kw)
    return rec


def test_mpii_json_skips_people_with_invalid_values(tmp_path):
    from tinybin.data import load_mpii_json
    bad = [_person(scale=float("nan")), _person(scale=-1.0), _person(scale=float("inf")), _person(scale=0),
           _person(center=[float("nan"), 3.0]), _person(center=[1.0, float("-inf")]),
           _person(joints=[[float("nan"), 1.0]] + [[1.0, 1.0]] * 15), _person(joints=[[1e39, 1.0]] * 16)]
    good = _person()
    path = tmp_path / "m.json"
    path.write_text(json.dumps(bad + [good]).replace("Infinity", "1e999"))
    recs = load_mpii_json(path)
    assert len(recs) == 1 and recs[0]["visible"].sum() == 16
    # no joints but joints_vis = 1: nothing visible (was 16 joints at (-1, -1))
    nj = {k: v for k, v in _person().items() if k != "joints"}
    recs = load_mpii_json(_mpii_json(tmp_path, [nj], "nj.json"))
    assert recs[0]["visible"].sum() == 0


def test_mpii_mat_skips_people_with_invalid_values(tmp_path):
    import scipy.io
    from tinybin.data import load_mpii_mat

    def rect(scale, ox, oy, x0=101.0):
        pts = np.zeros((1, 2), dtype=[("x", "O"), ("y", "O"), ("id", "O")])
        pts[0, 0] = (x0, 51.0, 0)
        pts[0, 1] = (111.0, 61.0, 9)
        return (91.0, 31.0, 121.0, 71.0, {"point": pts}, scale, {"x": ox, "y": oy})
    people = [rect(2.0, 111.0, 101.0), rect(np.nan, 111.0, 101.0), rect(-2.0, 111.0, 101.0),
              rect(np.inf, 111.0, 101.0), rect(2.0, np.nan, 101.0), rect(2.0, 111.0, -np.inf),
              rect(2.0, 111.0, 101.0, x0=np.nan), rect(2.0, 111.0, 101.0, x0=np.inf)]
    dt = [("x1", "O"), ("y1", "O"), ("x2", "O"), ("y2", "O"), ("annopoints", "O"), ("scale", "O"), ("objpos", "O")]
    rects = np.zeros((1, len(people)), dtype=dt)
    for i, r in enumerate(people):
        rects[0, i] = r
    ann = np.zeros((1, 1), dtype=[("image", "O"), ("annorect", "O")])
    ann[0, 0] = ({"name": "000001.jpg"}, rects)
    scipy.io.savemat(tmp_path / "m.mat", {"RELEASE": {"annolist": ann, "img_train": np.array([[1]])}})
    recs = load_mpii_mat(tmp_path / "m.mat")
    assert [r["person_index"] for r in recs] == [0]


@pytest.mark.parametrize("name", ["../../x.jpg", "/etc/passwd", "a/../../b.jpg"])
def test_image_names_must_stay_inside_the_image_folder(tmp_path, name):
    from tinybin.data import load_mpii_json
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="outside the image folder|relative path inside"):
        load_mpii_json(_mpii_json(tmp_path, [_person(image=name)]), image_dir=tmp_path / "images")


def test_image_names_inside_the_folder_are_fine(tmp_path):
    from PIL import Image
    from tinybin.data import load_mpii_json
    (tmp_path / "images" / "sub").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "sub" / "a.jpg")
    recs = load_mpii_json(_mpii_json(tmp_path, [_person(image="sub/./a.jpg")]), image_dir=tmp_path / "images")
    assert recs[0]["image_path"].endswith(os.path.join("sub", "a.jpg"))


def test_pts_encodings_and_values(tmp_path):
    from tinybin.data import read_pts
    body = "version: 1\nn_points: 2\n{\n1 2\n3 4\n}\n"
    (tmp_path / "bom.pts").write_text("version: 1\nn_points: 2\n\ufeff{\n1 2\n3 4\n}\n", encoding="utf-8")
    (tmp_path / "bom0.pts").write_bytes(b"\xef\xbb\xbf" + body.encode())
    (tmp_path / "u16.pts").write_text(body, encoding="utf-16")
    for f in ("bom.pts", "bom0.pts", "u16.pts"):
        np.testing.assert_array_equal(read_pts(tmp_path / f), [[0, 1], [2, 3]])
    (tmp_path / "big.pts").write_text(body.replace("3 4", "1e39 4"))
    with pytest.raises(ValueError, match="float32"):
        read_pts(tmp_path / "big.pts")
    (tmp_path / "u16.json").write_text(json.dumps([_person()]), encoding="utf-16")
    from tinybin.data import load_mpii_json
    assert len(load_mpii_json(tmp_path / "u16.json")) == 1
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested|JSON"):
        load_mpii_json(tmp_path / "deep.json")


def test_empty_batches_and_predictions_are_refused(tmp_path):
    from tinybin.data import RecordDataset, load_mpii_json
    ds = RecordDataset(load_mpii_json(_mpii_json(tmp_path, [_person()])), resolution=16)
    with pytest.raises(ValueError, match="empty"):
        ds.batch([])
