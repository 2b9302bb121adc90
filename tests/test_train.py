"""Training loop: exact resume, crash-safe checkpoints, stacks, segmentation, and that it learns."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tinybin.data as D
import tinybin as tb
from tinybin.train import TrainConfig, Trainer, TrainingInterrupted, evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_net(seed=0, **kw):
    cfg = dict(num_landmarks=16, block="hpm", binary=True, width=16, depth=2, resolution=32, seed=seed)
    cfg.update(kw)
    return tb.HourGlass(**cfg)


@pytest.fixture(scope="module")
def pose_data():
    return (D.SyntheticPose(24, resolution=32, seed=0, split="train"),
            D.SyntheticPose(8, resolution=32, seed=0, split="test"))


class Interrupt(Exception):
    pass


def test_resume_gives_the_same_weights_and_losses_as_an_uninterrupted_run(tmp_path, pose_data):
    train, test = pose_data
    cfg = TrainConfig(steps=6, batch_size=4, lr=1e-3, lr_end=2e-4, ckpt_every=2, seed=7)
    full = Trainer(small_net(), train, cfg, out_dir=str(tmp_path / "full"), progress=False)
    full.fit()

    part = Trainer(small_net(), train, cfg, out_dir=str(tmp_path / "part"), progress=False)
    orig = part.train_step

    def boom(step):
        if step == 3:
            raise Interrupt
        return orig(step)
    part.train_step = boom
    with pytest.raises(Interrupt):
        part.fit()
    assert os.path.exists(tmp_path / "part" / "checkpoint.npz")

    resumed = Trainer(small_net(seed=99), train, cfg, out_dir=str(tmp_path / "part"), progress=False)
    resumed.fit()
    assert resumed.step == 6
    np.testing.assert_array_equal(resumed.history["loss"], full.history["loss"])
    for (k, a), (_, b) in zip(full.net.state_dict().items(), resumed.net.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)


def _assert_same_run(a, b):
    np.testing.assert_array_equal(a.history["loss"], b.history["loss"])
    for (k, x), (_, y) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        np.testing.assert_array_equal(x, y, err_msg=k)


def test_should_stop_stops_between_steps_checkpoints_and_the_run_resumes_bit_exact(tmp_path, pose_data):
    train, _ = pose_data
    cfg = TrainConfig(steps=7, batch_size=4, lr=1e-3, lr_end=2e-4, ckpt_every=0, seed=3)  # no periodic ckpt
    full = Trainer(small_net(), train, cfg, progress=False)
    full.fit()

    t = Trainer(small_net(), train, cfg, out_dir=str(tmp_path), progress=False, should_stop=lambda: t.step == 4)
    with pytest.raises(TrainingInterrupted) as info:
        t.fit()
    assert (info.value.step, info.value.reason) == (4, "should_stop")
    assert info.value.checkpoint == str(tmp_path / "checkpoint.npz") and os.path.exists(info.value.checkpoint)
    assert len(t.history["loss"]) == 4

    resumed = Trainer(small_net(seed=99), train, cfg, out_dir=str(tmp_path), progress=False)
    resumed.fit()
    assert resumed.step == 7
    _assert_same_run(resumed, full)

    # without an out_dir nothing is saved, and calling fit() again continues in memory
    mem = Trainer(small_net(), train, cfg, progress=False, should_stop=lambda: mem.step == 2)
    with pytest.raises(TrainingInterrupted) as info:
        mem.fit()
    assert info.value.checkpoint is None and mem.step == 2
    mem.should_stop = None
    mem.fit()
    _assert_same_run(mem, full)


def test_ctrl_c_during_fit_finishes_the_step_then_stops_and_a_second_one_stops_at_once(pose_data):
    train, _ = pose_data
    cfg = TrainConfig(steps=6, batch_size=4, lr=1e-3, seed=3)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    def send(*signums):  # "Ctrl-C" arrives while step 2 has finished and step 3 has not started
        def check():
            if t.step == 2:
                for s in signums:  # to this thread: handled before raise_signal returns
                    signal.raise_signal(s)
            return False
        return check

    for signum, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
        t = Trainer(small_net(), train, cfg, progress=False, should_stop=send(signum))
        with pytest.raises(TrainingInterrupted) as info:
            t.fit()
        # the signal is seen at the next step boundary: step 3 ran whole, nothing after it
        assert (info.value.step, info.value.reason) == (3, name) and len(t.history["loss"]) == 3
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before

    t = Trainer(small_net(), train, cfg, progress=False, should_stop=send(signal.SIGINT, signal.SIGINT))
    with pytest.raises(KeyboardInterrupt) as info:
        t.fit()
    assert not isinstance(info.value, TrainingInterrupted) and t.step == 2
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_checkpoint_with_a_different_training_config_is_refused(tmp_path, pose_data):
    train, _ = pose_data
    Trainer(small_net(), train, TrainConfig(steps=2, batch_size=2, seed=1), out_dir=str(tmp_path),
            progress=False).fit()
    t = Trainer(small_net(), train, TrainConfig(steps=4, batch_size=2, seed=2), out_dir=str(tmp_path),
                progress=False)
    with pytest.raises(ValueError, match="different config"):
        t.fit()


WRITER = r"""
import sys, numpy as np
import tinybin as tb
net = tb.HourGlass(num_landmarks=16, block="hpm", width=64, depth=3, resolution=64)
path = sys.argv[1]
i = 0
while True:
    for p in net.parameters():
        p.data[...] = i % 7
    tb.save(net, path)
    print("saved", i, flush=True)
    i += 1
"""


def test_killing_the_process_mid_write_leaves_the_previous_checkpoint_loadable(tmp_path):
    path = str(tmp_path / "ck.npz")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = np.random.default_rng(0)
    for trial in range(3):
        proc = subprocess.Popen([sys.executable, str(script), path], stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # one complete checkpoint exists
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        net = tb.HourGlass(num_landmarks=16, block="hpm", width=64, depth=3, resolution=64)
        tb.load(net, path)  # must not raise
        vals = {float(p.data.flat[0]) for p in net.parameters()}
        assert len(vals) == 1  # one consistent snapshot, not a mix of two


def test_stacked_sequential_training_freezes_earlier_stacks(pose_data):
    train, _ = pose_data
    net = small_net(stacks=2)
    cfg = TrainConfig(steps=2, finetune_steps=2, batch_size=2, sequential_stacks=True, seed=0)
    before = {k: v.copy() for k, v in net.state_dict().items()}
    t = Trainer(net, train, cfg, progress=False)
    for s in range(2):
        t.train_step(s)  # phase 0: only stack 0 trains
    changed = {k for k, v in net.state_dict().items() if not np.array_equal(v, before[k])}
    assert any(k.startswith("stacks.0.") for k in changed)
    assert not any(k.startswith("stacks.1.") and "running" not in k for k in changed)
    t.fit(resume=False)
    assert t.step == 6


def _stack_keys(net, i):
    """State-dict keys (parameters and BatchNorm buffers) of the modules stage i trains."""
    prefix = {id(m): name for name, m in net.named_modules()}
    keys = set()
    for m in net.stack_modules(i):
        p = prefix[id(m)]
        keys |= {f"{p}.{k}" for k in m.state_dict()}
    return keys


def test_sequential_training_leaves_frozen_stacks_and_their_bn_statistics_bit_exact(pose_data):
    train, _ = pose_data
    net = small_net(stacks=3)
    cfg = TrainConfig(steps=2, finetune_steps=2, batch_size=2, sequential_stacks=True, seed=0)
    t = Trainer(net, train, cfg, progress=False)
    keys = [_stack_keys(net, i) for i in range(3)]
    assert not (keys[0] & keys[1]) and not (keys[1] & keys[2])
    assert any("running_mean" in k for k in keys[0]) and any(k.startswith("conv1.") for k in keys[0])  # stem
    step = 0
    for phase in range(4):  # stages 0, 1, 2, then joint fine-tuning
        before = {k: v.copy() for k, v in net.state_dict().items()}
        for _ in range(2):
            t.train_step(step)
            step += 1
        after = net.state_dict()
        changed = {k for k in after if not np.array_equal(after[k], before[k])}
        for i in range(3):
            params = {k for k in keys[i] if "running" not in k}
            stats = {k for k in keys[i] if "running" in k}
            if phase == 3 or i == phase:  # active: weights and BN statistics move
                assert params & changed, (phase, i)
                assert stats & changed, (phase, i)
            else:  # frozen (i < phase) or not yet added (i > phase): bit for bit unchanged
                assert not (params | stats) & changed, (phase, i, sorted((params | stats) & changed)[:5])
    # the step's own net.train() must not unfreeze them: the frozen modules are in eval mode
    t2 = Trainer(small_net(stacks=2), train, cfg, progress=False)
    t2.train_step(2)
    assert all(not m.training for m in t2.net.stack_modules(0) for m in m.modules())
    assert all(m.training for m in t2.net.stack_modules(1) for m in m.modules())


def test_segmentation_and_face_training_run_and_evaluate():
    from tinybin.experiments import make_data
    tr, te = make_data("segmentation", n_train=8, n_test=4, resolution=32)
    net = small_net(num_landmarks=7)
    t = Trainer(net, tr, TrainConfig(steps=2, batch_size=2, loss="ce"), val=te, progress=False)
    t.fit()
    r = t.evaluate()
    assert 0 <= r["mean_iu"] <= 1 and 0 <= r["pixel_acc"] <= 1
    tr, te = make_data("face", n_train=8, n_test=4, resolution=32)
    net = small_net(num_landmarks=68)
    Trainer(net, tr, TrainConfig(steps=2, batch_size=2), progress=False).fit()
    r = evaluate(net, te)
    assert np.isfinite(r["nme"]) and "nme_yaw" in r


def test_trainer_rejects_bad_configs(pose_data):
    train, _ = pose_data
    with pytest.raises(ValueError, match="loss"):
        Trainer(small_net(), train, TrainConfig(loss="hinge"), progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(small_net(), train, TrainConfig(optimizer="lbfgs"), progress=False)
    with pytest.raises(TypeError, match="data must be a dataset"):  # the config where the data goes
        Trainer(small_net(), TrainConfig(steps=2), progress=False)


@pytest.mark.slow
def test_a_tiny_binary_network_learns_on_synthetic_poses():
    train = D.SyntheticPose(1000, resolution=64, seed=0, split="train", difficulty=0.3)
    test = D.SyntheticPose(200, resolution=64, seed=0, split="test", difficulty=0.3)
    net = small_net(width=32, resolution=64)
    before = evaluate(net, test)["pckh"]
    Trainer(net, train, TrainConfig(steps=400, batch_size=16, lr=5e-3, lr_end=1e-3), progress=False).fit()
    after = evaluate(net, test)["pckh"]
    assert after > before + 15, (before, after)


def test_trainer_without_a_config_uses_the_calibrated_recipe_of_its_network_kind(pose_data):
    from tinybin.experiments import RECIPE, recommended
    for binary in (True, False):
        net = tb.HourGlass(num_landmarks=16, width=16, depth=2, resolution=32, seed=0, binary=binary)
        cfg = Trainer(net, pose_data[0], progress=False).cfg
        kind = RECIPE["binary" if binary else "real"]
        assert (cfg.lr, cfg.lr_end, cfg.clip_latent) == (kind["lr"], kind["lr_end"], kind["clip_latent"])
        assert cfg == TrainConfig.recommended(binary=binary)
        assert cfg.steps == recommended(binary)["steps"]
    assert TrainConfig.recommended(binary=True, steps=7, lr=1e-3).lr == 1e-3  # overrides win
    with pytest.raises(TypeError, match="unknown settings"):
        TrainConfig.recommended(binary=True, stepz=7)
