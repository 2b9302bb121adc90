"""Training and evaluation of heatmap regressors and part segmenters (paper §5, §6.1, §8.2, §9).

The paper's recipe is the default: RMSprop (Torch's alpha 0.99, eps 1e-8), learning rate 2.5e-4
dropped four times to 5e-5, the pixel-wise sigmoid cross-entropy loss on Gaussian heatmaps, He
initialisation, and augmentation by rotation (+-40 deg), scale (0.7-1.3) and flipping. Stacked
networks get intermediate supervision (every stack's output is in the loss) and can be trained
sequentially (train stack 1; freeze it and train stack 2; ...; then fine-tune all; paper §8.2).

Data. A dataset is any object with `len(ds)`, `ds.kind` (a key of `tinybin.data.KINDS`: "pose",
"face", "segmentation", ...) and `ds.batch(indices, augment=bool, rng=Generator)` returning a dict
of stacked arrays: image (B, R, R, 3) in [0, 1], points (B, K, 2) in crop pixels, visible (B, K)
and, for segmentation, mask (B, R, R) integer labels. `tinybin.data.SyntheticPose`,
`SyntheticFace` and `SyntheticFaceParts` are such objects. The kind's row names the metric
`evaluate` reports (a key of `METRICS`); `TrainConfig.loss` is a key of `tinybin.losses.LOSSES`.

Determinism. Step t draws its batch and augmentation from `np.random.default_rng([seed, t])`, so
the data of a step does not depend on what happened before it. A checkpoint holds the weights,
BatchNorm statistics, optimizer state, step and history: resuming from it replays exactly the loss
trajectory of an uninterrupted run. Checkpoints are written atomically (`tinybin.serialization`).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from . import heatmaps as hm
from . import losses, metrics, optim
from .data.kinds import get_kind
from .nn import Module, set_quantization
from .serialization import load as load_ckpt, save as save_ckpt, write_json
from .functional import sigmoid_np
from .tensor import Tensor, no_grad

try:  # tqdm is a runtime dependency; TQDM_DISABLE=1 silences it (CI, notebook tests). The plain
    from tqdm import tqdm  # console bar: tqdm.auto would need ipywidgets inside Jupyter
except ImportError:  # pragma: no cover
    tqdm = None


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in checkpoints and result files)."""
    steps: int = 2000                 # optimizer steps (per phase for sequential stack training)
    batch_size: int = 16
    optimizer: str = "rmsprop"        # rmsprop | adam | sgd
    lr: float = 2.5e-4
    lr_end: float = 5e-5              # four geometric drops to this value (paper §6.1); = lr: constant
    loss: str = "bce"                 # a key of losses.LOSSES: bce (sigmoid, eq. 2) | mse (L2) | ce (softmax, segmentation)
    augment: bool = True
    sigma: float = 1.0                # Gaussian std in heatmap pixels
    stride: int = 4                   # input pixels per heatmap pixel
    clip_latent: float | None = None  # clamp latent binary weights to [-c, c]
    warmup_steps: int = 0             # linear warm-up: lr * (t + 1) / warmup_steps for t < warmup_steps
    flip_test: bool = False           # evaluations during fit() average the mirrored crop's maps
    eval_every: int = 0               # 0: only at the end
    eval_samples: int = 256
    ckpt_every: int = 0               # 0: only at the end (when out_dir is set)
    seed: int = 0
    sequential_stacks: bool = False   # §8.2 stage-wise training of stacked networks
    finetune_steps: int = 0           # joint fine-tuning steps after sequential stages
    # beyond the paper (arXiv:1904.05868); see `quantization_state` and `distillation_loss`
    progressive_steps: int = 0        # progressive quantization: steps of the ramp (0: off)
    progressive_stages: int = 4       # the ramp binarizes 0, 1/S, ..., (S-1)/S of each unit's channels
    reverse_init_steps: int = 0       # reverse-order init: steps with binary activations, real weights
    distill_teacher: str | None = None  # checkpoint of a trained (real) network: heatmap distillation
    distill_weight: float = 1.0       # loss = task + distill_weight * KD
    distill_temperature: float = 1.0  # T: soft targets sigmoid(teacher / T), KD scaled by T^2

    @classmethod
    def recommended(cls, binary: bool = True, **overrides) -> "TrainConfig":
        """The calibrated recipe for a binary (or real) network at the downscaled budget
        (`tinybin.experiments.recommended`: learning rate, schedule, latent clipping and steps
        chosen on the validation split), with `overrides` on top. The field defaults above are the
        paper's full-scale settings (lr 2.5e-4 -> 5e-5), which train the downscaled networks slowly.

            cfg = TrainConfig.recommended(binary=True, steps=500)
        """
        from .experiments.definitions import recommended
        fields = set(cls.__dataclass_fields__)
        unknown = set(overrides) - fields
        if unknown:
            raise TypeError(f"TrainConfig.recommended: unknown settings {sorted(unknown)}")
        kw = {k: v for k, v in recommended(binary).items() if k in fields}
        kw.update(overrides)
        return cls(**kw)

    def check(self) -> "TrainConfig":
        """ValueError naming the first setting outside its range (steps < 0, lr = inf, ...)."""
        def num(name, lo, strict=True, allow_none=False, integer=False):
            v = getattr(self, name)
            if v is None and allow_none:
                return
            ok = not isinstance(v, bool) and isinstance(v, (int, np.integer) if integer else (int, float, np.number))
            ok = ok and np.isfinite(v) and (v > lo if strict else v >= lo)
            if not ok:
                kind = "an integer" if integer else "a finite number"
                raise ValueError(f"TrainConfig: {name} must be {kind} {'>' if strict else '>='} {lo}, got {v!r}")
        for name in ("steps", "eval_every", "ckpt_every", "finetune_steps", "seed"):
            num(name, 0, strict=False, integer=True)
        for name in ("batch_size", "stride", "eval_samples"):
            num(name, 0, integer=True)
        num("lr", 0)
        num("lr_end", 0, allow_none=True)
        num("sigma", 0)
        num("clip_latent", 0, allow_none=True)
        for name in ("progressive_steps", "reverse_init_steps"):
            num(name, 0, strict=False, integer=True)
        num("progressive_stages", 0, integer=True)
        num("distill_weight", 0, strict=False)
        num("distill_temperature", 0)
        R, P = self.reverse_init_steps, self.progressive_steps
        if R and P > R:
            raise ValueError(f"TrainConfig: with reverse_init_steps={R}, the activation ramp "
                             f"(progressive_steps={P}) must fit into it (progressive_steps <= reverse_init_steps)")
        if (R or P) and R + P >= self.steps:
            raise ValueError(f"TrainConfig: the network must end fully binary: reverse_init_steps + "
                             f"progressive_steps = {R + P} must be < steps = {self.steps}")
        if self.distill_teacher is not None and not isinstance(self.distill_teacher, str):
            raise ValueError(f"TrainConfig: distill_teacher must be a checkpoint path or None, got {self.distill_teacher!r}")
        return self

    def total_steps(self, stacks: int = 1) -> int:
        if self.sequential_stacks and stacks > 1:
            return self.steps * stacks + self.finetune_steps
        return self.steps


def make_optimizer(name: str, params, lr: float, clip=None, clip_params=None) -> optim.Optimizer:
    name = name.lower()
    kw = dict(clip=clip, clip_params=clip_params)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, **kw)
    if name == "adam":
        return optim.Adam(params, lr=lr, **kw)
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9, **kw)
    raise ValueError(f"unknown optimizer {name!r}; choose rmsprop, adam or sgd")


def _as_list(out) -> list[Tensor]:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def annotated(batch: dict) -> np.ndarray:
    """Which landmarks carry a label: visible ones plus, for synthetic data, occluded ones
    (MPII and AFLW2000-3D annotate occluded joints too)."""
    vis = np.asarray(batch["visible"], np.float32)
    if "occluded" in batch:
        vis = np.maximum(vis, np.asarray(batch["occluded"], np.float32))
    return vis


def heatmap_targets(batch: dict, out_hw: tuple[int, int], sigma: float, stride: int):
    """(targets (B, h, w, K), weights (B, K)) for a batch of crops."""
    pts = hm.image_to_heatmap(batch["points"], stride)
    return hm.render(pts, out_hw, sigma, annotated(batch) > 0)


def mask_targets(mask: np.ndarray, out_hw: tuple[int, int], stride: int) -> np.ndarray:
    """Segmentation labels at output resolution: heatmap pixel u is centred on input pixel
    stride*u + (stride-1)/2; we take the input pixel at stride*u + stride//2 (nearest, ties up)."""
    o = stride // 2
    return np.ascontiguousarray(mask[:, o::stride, o::stride][:, :out_hw[0], :out_hw[1]]).astype(np.int64)


# What each kind of loss target is made of (`losses.Loss.target`): the arguments after the logits.
TARGETS: dict[str, Callable[[dict, tuple[int, int], TrainConfig], tuple]] = {
    "heatmaps": lambda batch, hw, cfg: heatmap_targets(batch, hw, cfg.sigma, cfg.stride),
    "labels": lambda batch, hw, cfg: (mask_targets(batch["mask"], hw, cfg.stride),),
}


def compute_loss(net_out, batch: dict, cfg: TrainConfig, active: list[int] | None = None) -> Tensor:
    """Sum of the per-stack losses (intermediate supervision) over the `active` stacks."""
    loss = losses.get_loss(cfg.loss)
    outs = _as_list(net_out)
    idx = range(len(outs)) if active is None else active
    total = None
    for i in idx:
        y = outs[i]
        l_i = loss.fn(y, *TARGETS[loss.target](batch, y.shape[1:3], cfg))
        total = l_i if total is None else total + l_i
    return total


# ---- evaluation -------------------------------------------------------------------------------

def predict(net: Module, images: np.ndarray, batch_size: int = 32, flip_perm=None) -> np.ndarray:
    """Last-stack output maps (N, h, w, K) of `net` in eval mode, without gradients.

    With `flip_perm`, also runs the mirrored images and averages (flip testing, heatmaps only)."""
    if len(images) == 0:
        raise ValueError("predict: no images (an empty set)")
    was_training = net.training
    net.eval()
    outs = []
    try:
        with no_grad():
            for s in range(0, len(images), batch_size):
                x = np.ascontiguousarray(images[s:s + batch_size], dtype=np.float32)
                y = _as_list(net(Tensor(x)))[-1].data
                if flip_perm is not None:
                    yf = _as_list(net(Tensor(np.ascontiguousarray(x[:, :, ::-1]))))[-1].data
                    y = hm.flip_test_combine(y, yf, flip_perm)
                outs.append(y)
    finally:
        net.train(was_training)
    return np.concatenate(outs)


def predict_points(net: Module, images: np.ndarray, stride: int = 4, batch_size: int = 32,
                   flip_perm=None) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, K, 2) in input-pixel coordinates, scores (N, K))."""
    maps = predict(net, images, batch_size, flip_perm)
    pts, scores = hm.decode(maps)
    return hm.heatmap_to_image(pts, stride), scores


# The metrics a data kind can name (`tinybin.data.Kind.metric`): each maps (net, batch of the whole
# evaluation set, stride, batch_size) to a dict of scores whose "score" entry is higher-is-better.
METRICS: dict[str, Callable[..., dict]] = {}


def register_metric(name: str):
    """Decorator: make an evaluation `fn(net, batch, stride, batch_size, flip_perm=None,
    matched_threshold=None) -> dict` available to data kinds by `name`. The dict holds the scores, "score" (higher is better) and may hold "pred",
    "gt", "annotated" (returned by `evaluate` only with return_predictions=True)."""
    def deco(fn):
        METRICS[name] = fn
        return fn
    return deco


def evaluate(net: Module, data, n: int | None = None, kind: str | None = None, stride: int = 4,
             batch_size: int = 32, return_predictions: bool = False, flip: bool = False,
             matched_threshold: float | None = None, return_distances: bool = False) -> dict:
    """Paper metrics on the first `n` samples of `data` (no augmentation).

    The data kind (`kind`, else `data.kind`) names the metric (`tinybin.data.KINDS`, `METRICS`):
    pose: PCKh@0.5 (per joint, parts, mean over 14 joints, count-weighted mean), PCKh@0.2,
      ``pckh_matched`` = PCKh at ``matched_threshold`` (default
      ``metrics.matched_threshold(R, stride)``: MPII's tolerance in heatmap cells, see
      ``tinybin.metrics``) and the PCKh curve over thresholds 0..3. Every PCKh number is computed
      from the normalised distances rounded to 4 decimals (NaN where not annotated), returned as
      ``distances`` (n, K) with ``return_distances``, so a report recomputes it exactly from them.
    face: NME (box normaliser, %) mean, by |yaw| bin, AUC@0.07 and failure rate; ``errors`` is
      the per-image NME (plain ratio), from which any CED / AUC can be recomputed; with
      ``return_distances`` also ``nme_per_image`` (the same, rounded to 6 decimals) and ``yaw``
      (degrees, per image) so that a stored result can be re-binned.
    segmentation: pixel accuracy, mean accuracy, mean IU (confusion over the whole set).

    flip: flip testing (heatmaps only): average the maps of the crop and of its mirror image,
    joints swapped by ``data.flip_perm``; recorded as ``flip_test`` in the result.
    """
    kind = kind or getattr(data, "kind", "pose")
    score = METRICS[get_kind(kind).metric]
    n = len(data) if n is None else min(n, len(data))
    if n < 1:
        raise ValueError("evaluate: needs at least one sample")
    batch = data.batch(np.arange(n))
    res: dict[str, Any] = {"kind": kind, "n": n}
    perm = None
    if flip:
        perm = getattr(data, "flip_perm", None)
        if perm is None:
            perm = get_kind(kind).flip_perm
        if perm is None:
            raise ValueError(f"evaluate: flip testing needs a flip permutation; data kind {kind!r} has none")
    res["flip_test"] = bool(flip)
    res.update(score(net, batch, stride, batch_size, flip_perm=perm, matched_threshold=matched_threshold))
    preds = {k: res.pop(k) for k in ("pred", "gt", "annotated") if k in res}
    if return_predictions:
        res.update(preds)
    if not return_distances:
        for k in ("distances", "nme_per_image", "yaw"):   # per-sample arrays: only on request
            res.pop(k, None)
    return res


@register_metric("mean_iu")
def score_segmentation(net: Module, batch: dict, stride: int = 4, batch_size: int = 32,
                       flip_perm=None, matched_threshold=None) -> dict:
    """Pixel accuracy, mean accuracy and mean IU of the argmax labels (confusion over the batch)."""
    maps = predict(net, batch["image"], batch_size)
    labels = mask_targets(batch["mask"], maps.shape[1:3], stride)
    conf = metrics.confusion(maps.argmax(-1), labels, maps.shape[-1])
    res = {k: float(v) if np.ndim(v) == 0 else np.asarray(v).tolist()
           for k, v in metrics.segmentation_scores(conf).items()}
    res["score"] = res["mean_iu"]
    return res


@register_metric("pckh")
def score_pose(net: Module, batch: dict, stride: int = 4, batch_size: int = 32,
               flip_perm=None, matched_threshold: float | None = None) -> dict:
    """PCKh@0.5 (per joint, parts, mean, count-weighted mean), PCKh@0.2, PCKh at the matched
    threshold, the PCKh curve, per-image errors and the (n, K) distances they all come from."""
    pred, _ = predict_points(net, batch["image"], stride, batch_size, flip_perm=flip_perm)
    gt = batch["points"]
    ann = annotated(batch) > 0
    d = np.round(metrics.normalized_distances(pred, gt, batch["head_size"], ann), 4)
    mt = metrics.matched_threshold(batch["image"].shape[1], stride) if matched_threshold is None \
        else float(matched_threshold)
    r = metrics.pckh_from_distances(d, 0.5)
    curve = metrics.pckh_curve_from_distances(d)
    res: dict[str, Any] = dict(
        pckh=r["mean"], pckh_weighted=r["mean_weighted"], pckh_joints=np.asarray(r["joints"]).tolist(),
        pckh_parts={k: float(v) for k, v in r["parts"].items()},
        pckh02=metrics.pckh_from_distances(d, 0.2)["mean"],
        pckh_matched=metrics.pckh_from_distances(d, mt)["mean"], matched_threshold=mt,
        pckh_curve={"thresholds": curve["thresholds"].tolist(),
                    "pckh": [round(float(v), 4) for v in curve["mean"]]})
    res["score"] = res["pckh"]
    res["distances"] = d
    with np.errstate(all="ignore"):
        res["errors"] = np.nanmean(d, axis=1).tolist()  # per image, head units
    res["pred"], res["gt"], res["annotated"] = pred, gt, ann
    return res


@register_metric("nme")
def score_face(net: Module, batch: dict, stride: int = 4, batch_size: int = 32,
               flip_perm=None, matched_threshold=None) -> dict:
    """NME (box normaliser, %), by |yaw| bin when the batch has yaw, AUC@0.07, failure rate;
    ``errors`` and ``nme_per_image`` are the per-image NME (plain ratio), from which any CED / AUC
    can be recomputed; ``yaw`` the per-image yaw (degrees) when the batch has it."""
    pred, _ = predict_points(net, batch["image"], stride, batch_size, flip_perm=flip_perm)
    gt = batch["points"]
    ann = annotated(batch) > 0
    e = metrics.nme(pred, gt, norm="box", visible=ann)
    res: dict[str, Any] = dict(nme=float(np.nanmean(e) * 100), auc07=float(metrics.auc(e, 0.07)),
                               fr07=float(metrics.failure_rate(e, 0.07)))
    if "yaw" in batch:
        by = metrics.nme_by_yaw(e, batch["yaw"])
        res["nme_yaw"] = {k: (float(v) * 100 if k != "counts" else np.asarray(v).tolist())
                          for k, v in by.items()}
        # Per image, with the per-image NME below: yaw bins, a balanced CED subset, AUC and
        # failure rate can all be recomputed from a stored result.
        res["yaw"] = [round(float(v), 2) for v in np.asarray(batch["yaw"]).reshape(-1)]
    res["score"] = -res["nme"]
    res["errors"] = e.tolist()
    res["nme_per_image"] = [round(float(v), 6) for v in e]
    res["pred"], res["gt"], res["annotated"] = pred, gt, ann
    return res


# ---- the trainer ----------------------------------------------------------------------------

class TrainingInterrupted(KeyboardInterrupt):
    """`Trainer.fit` stopped between two steps: Ctrl-C (SIGINT), SIGTERM, or its `should_stop`
    returned True. The step in progress finished, so the network and optimizer hold the state after
    `step` steps; `checkpoint` is where that state was saved (None without an `out_dir`). Call
    `fit()` again, or rerun the same command, to continue exactly where it stopped."""

    def __init__(self, step: int, checkpoint: str | None, reason: str):
        self.step, self.checkpoint, self.reason = step, checkpoint, reason
        where = f"; saved to {checkpoint}" if checkpoint else "; nothing saved (no out_dir)"
        super().__init__(f"training interrupted ({reason}) after step {step}{where}")


@contextlib.contextmanager
def _deferred_signals(caught: list):
    """While training in the main thread, SIGINT and SIGTERM only append their name to `caught`;
    the loop looks at it between steps. A second SIGINT interrupts at once, as Ctrl-C usually
    does (nothing is saved then beyond the last checkpoint). In other threads: no change."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if caught and signum == signal.SIGINT:
            raise KeyboardInterrupt
        caught.append(signal.Signals(signum).name)

    # a signal the process ignores (SIGINT under nohup, or in a shell's background job) stays ignored
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)
           if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


class Trainer:
    """Train `net` on `data` with `cfg`; checkpoints and history go to `out_dir` (optional).

        trainer = Trainer(net, train_set, TrainConfig(steps=1500), val=test_set, out_dir="runs/x")
        history = trainer.fit()          # resumes from runs/x/checkpoint.npz if present
        trainer.evaluate()               # paper metrics on the validation set

    Ctrl-C (or SIGTERM) during `fit` lets the step in progress finish, saves a checkpoint and
    raises `TrainingInterrupted`; a second Ctrl-C stops at once. `should_stop`, a function called
    between steps, stops training the same way when it returns True (a worker process uses it to
    stop when the process that started it has gone).
    """

    def __init__(self, net: Module, data, cfg: TrainConfig | None = None, val=None,
                 out_dir: str | None = None, progress: bool = True,
                 on_eval: Callable[[int, dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None):
        if isinstance(data, TrainConfig) or not hasattr(data, "__len__"):
            raise TypeError(f"Trainer(net, data, cfg=None, ...): data must be a dataset (e.g. SyntheticPose), "
                            f"got {type(data).__name__}")
        self.net, self.data, self.val = net, data, val
        if cfg is None:  # the calibrated recipe for this kind of network
            cfg = TrainConfig.recommended(binary=bool(getattr(net, "config", {}).get("binary", True)))
        self.cfg = cfg.check()
        if len(data) < 1:
            raise ValueError("Trainer: the training set is empty")
        self.kind = getattr(data, "kind", "pose")
        kind = get_kind(self.kind, "Trainer: data kind")
        loss = losses.get_loss(self.cfg.loss)
        if loss.target != losses.get_loss(kind.loss).target:
            raise ValueError(f"Trainer: loss {loss.name!r} takes {loss.target} targets but {self.kind!r} "
                             f"data gives {losses.get_loss(kind.loss).target}; use e.g. loss={kind.loss!r}")
        self.out_dir = out_dir
        _check_out_dir(out_dir)
        self.data_settings = data_settings(data)
        self.progress = progress
        self.on_eval = on_eval
        self.should_stop = should_stop
        self.stacks = int(getattr(net, "config", {}).get("stacks", 1))
        self.step = 0
        self.history: dict[str, list] = {"step": [], "loss": [], "lr": [], "time": [],
                                         "eval_step": [], "eval_score": [], "eval_metrics": []}
        self.train_time = 0.0
        self._saved_step = None
        self._phase = None
        self._setup_phase(0)
        self.teacher = load_teacher(self.cfg.distill_teacher) if self.cfg.distill_teacher else None

    # -- phases (sequential stack training) --------------------------------------------------
    def _phase_of(self, step: int) -> int:
        c = self.cfg
        if not (c.sequential_stacks and self.stacks > 1):
            return 0
        return min(step // c.steps, self.stacks)  # phase == stacks means joint fine-tuning

    def _active(self, phase: int) -> list[int] | None:
        if not (self.cfg.sequential_stacks and self.stacks > 1) or phase >= self.stacks:
            return None
        return [phase]

    def _setup_phase(self, phase: int) -> None:
        if phase == self._phase:
            return
        c = self.cfg
        seq = c.sequential_stacks and self.stacks > 1
        self._frozen: list[Module] = []
        if seq:
            if not hasattr(self.net, "stack_modules"):
                raise ValueError("sequential stack training needs a network with stack_modules(i)")
            for i in range(self.stacks):
                trainable = phase >= self.stacks or i == phase
                for m in self.net.stack_modules(i):
                    m.requires_grad_(trainable)
                    if not trainable and i < phase:  # run in this phase, but frozen (see _train_mode)
                        self._frozen.append(m)
        params = self.net.parameters()
        latent = [m.conv.weight for _, m in self.net.named_modules()
                  if getattr(m, "binary", False) and hasattr(m, "conv")]
        self.opt = make_optimizer(c.optimizer, params, c.lr, c.clip_latent, latent)
        if seq and phase >= self.stacks:
            n_steps, start = c.finetune_steps, c.steps * self.stacks
        elif seq:
            n_steps, start = c.steps, c.steps * phase
        else:
            n_steps, start = c.steps, 0
        end = c.lr_end if c.lr_end is not None else c.lr
        if end == c.lr or n_steps < 5:
            self.sched = optim.MultiStepLR(self.opt, [], lrs=[c.lr])
        else:
            self.sched = optim.MultiStepLR.paper(self.opt, n_steps, c.lr, end)
        self._phase_start = start
        self._phase = phase

    def _train_mode(self) -> None:
        """Training mode for the step, except the frozen stacks of sequential training (paper §8.2):
        they stay in eval mode, so their BatchNorm layers normalise with, and do not update, their
        running statistics; a frozen stack then computes a fixed function of its input."""
        self.net.train()
        for m in getattr(self, "_frozen", ()):
            m.eval()

    # -- one step --------------------------------------------------------------------------
    def batch_for_step(self, step: int) -> dict:
        rng = np.random.default_rng([self.cfg.seed, step])
        idx = rng.choice(len(self.data), size=self.cfg.batch_size, replace=len(self.data) < self.cfg.batch_size)
        return self.data.batch(idx, augment=self.cfg.augment, rng=rng)

    def train_step(self, step: int) -> float:
        phase = self._phase_of(step)
        self._setup_phase(phase)
        lr = self.sched.step(step - self._phase_start)
        t = step - self._phase_start
        if t < self.cfg.warmup_steps:  # linear warm-up from lr / warmup_steps (each phase)
            lr = self.opt.lr = lr * (t + 1) / self.cfg.warmup_steps
        batch = self.batch_for_step(step)
        set_quantization(self.net, quantization_state(step, self.cfg))  # None: fully binary
        self._train_mode()
        self.opt.zero_grad()
        x = np.ascontiguousarray(batch["image"], dtype=np.float32)
        active = self._active(phase)
        if active is not None:  # stage `phase` of sequential training: later stacks are not run
            out = self.net(Tensor(x), num_stacks=phase + 1)
        else:
            out = self.net(Tensor(x))
        bad = next((i for i, o in enumerate(_as_list(out)) if not np.isfinite(o.data).all()), None)
        if bad is not None:  # finite weights can still overflow the activations
            raise FloatingPointError(self._diverged(step, f"the output of stack {bad + 1} is NaN or Inf"))
        loss = compute_loss(out, batch, self.cfg, active)
        if self.teacher is not None:
            loss = loss + distillation_term(out, self.teacher, x, self.cfg, active)
        val = float(loss.data)
        if not np.isfinite(val):
            raise FloatingPointError(self._diverged(step, f"the loss is {val}"))
        loss.backward()
        self.opt.step()
        self.check_finite(step)
        self.history["step"].append(step)
        self.history["loss"].append(val)
        self.history["lr"].append(lr)
        return val

    def check_finite(self, step: int) -> None:
        """FloatingPointError naming the first non-finite parameter, buffer or optimizer state.

        One float64 sum over every array (NaN and Inf propagate through a sum; float32 values
        cannot overflow a float64 sum), so the cost is one pass over the weights and state; the
        names are only looked up when the sum is not finite. `sign(NaN) = -1` would otherwise hide
        a NaN weight from the loss."""
        arrays = [p.data for _, p in self.net.named_parameters()] + [b for _, b in self.net.named_buffers()]
        arrays += [a for st in self.opt.state for a in st.values()]
        if np.isfinite(sum(float(np.sum(a, dtype=np.float64)) for a in arrays)):
            return
        named = [(f"parameter {k}", p.data) for k, p in self.net.named_parameters()]
        named += [(f"buffer {k}", b) for k, b in self.net.named_buffers()]
        named += [(f"optimizer state {k}", v) for k, v in self.opt.state_dict().items()
                  if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
        bad = next((n for n, a in named if not np.isfinite(a).all()), "an array")
        raise FloatingPointError(self._diverged(step, f"{bad} contains NaN or Inf after the update"))

    def _diverged(self, step: int, what: str) -> str:
        keep = (f"; the last good checkpoint {self.ckpt_path} is kept (step {self._saved_step})"
                if self.ckpt_path and self._saved_step is not None else "; nothing was saved")
        return f"training diverged at step {step}: {what}{keep}. Try a lower learning rate (lr={self.cfg.lr:g})"

    # -- the loop ----------------------------------------------------------------------------
    @property
    def ckpt_path(self) -> str | None:
        return os.path.join(self.out_dir, "checkpoint.npz") if self.out_dir else None

    def fit(self, resume: bool = True) -> dict:
        """Train until `cfg.total_steps()`; resume from `out_dir/checkpoint.npz` when it exists."""
        c = self.cfg
        total = c.total_steps(self.stacks)
        if self.out_dir:
            _check_out_dir(self.out_dir, create=True)
        if resume and self.ckpt_path and os.path.exists(self.ckpt_path):
            self.load_checkpoint(self.ckpt_path)
        bar = None
        if self.progress and tqdm is not None:
            bar = tqdm(total=total, initial=self.step, desc="train", unit="step", dynamic_ncols=True,
                       leave=True)
        caught: list[str] = []
        try:
            with _deferred_signals(caught):
                while self.step < total:
                    t0 = time.perf_counter()
                    loss = self.train_step(self.step)
                    self.train_time += time.perf_counter() - t0
                    self.history["time"].append(self.train_time)
                    self.step += 1
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss:.4g}", lr=f"{self.opt.lr:.2g}")
                    if self.step >= total:
                        break
                    if c.eval_every and self.val is not None and self.step % c.eval_every == 0:
                        self._periodic_eval()
                    if c.ckpt_every and self.out_dir and self.step % c.ckpt_every == 0:
                        self.save_checkpoint()
                    if caught or (self.should_stop is not None and self.should_stop()):
                        path = None
                        if self.out_dir:
                            path = self.save_checkpoint() if self._saved_step != self.step else self.ckpt_path
                        raise TrainingInterrupted(self.step, path, caught[0] if caught else "should_stop")
        finally:
            if bar is not None:
                bar.close()
            set_quantization(self.net, None)  # the trained network is the fully binary one
        if self.val is not None and (not self.history["eval_step"] or self.history["eval_step"][-1] != self.step):
            self._periodic_eval()
        if self.out_dir:
            self.save_checkpoint()
        return self.history

    def _periodic_eval(self) -> dict:
        r = evaluate(self.net, self.val, self.cfg.eval_samples, kind=self.kind, stride=self.cfg.stride,
                     flip=self.cfg.flip_test)
        self.history["eval_step"].append(self.step)
        self.history["eval_score"].append(r["score"])
        self.history.setdefault("eval_metrics", []).append(
            {k: r[k] for k in ("pckh", "pckh_matched", "nme", "auc07", "mean_iu") if k in r})
        if self.on_eval:
            self.on_eval(self.step, r)
        return r

    def evaluate(self, n: int | None = None) -> dict:
        if self.val is None:
            raise ValueError("Trainer.evaluate: no validation set given")
        return evaluate(self.net, self.val, n, kind=self.kind, stride=self.cfg.stride)

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, path: str | None = None) -> str:
        path = path or self.ckpt_path
        if path is None:
            raise ValueError("save_checkpoint: no path and no out_dir")
        extra = {f"opt/{k}": v for k, v in self.opt.state_dict().items()}
        extra["step"] = np.array(self.step)
        extra["phase"] = np.array(self._phase)
        extra["train_time"] = np.array(self.train_time)
        extra["history"] = np.array(json.dumps(self.history))
        save_ckpt(self.net, path, extra=extra, meta={"train_config": asdict(self.cfg),
                                                      "data_settings": self.data_settings})
        self._saved_step = self.step
        if self.out_dir:
            write_json(os.path.join(self.out_dir, "history.json"), self.history)
        return path

    def load_checkpoint(self, path: str) -> None:
        """Resume from a run checkpoint. Every training setting and data setting must equal the
        stored ones (ValueError naming the differences, before any weight is loaded), except that
        a larger `steps` extends the run: the learning-rate schedule is then recomputed for the
        new total, so the remaining steps follow the schedule of the longer run."""
        self._check_resume(path)
        info = load_ckpt(self.net, path)
        ex = info["extra"]
        self.step = int(ex["step"])
        self._saved_step = self.step
        self._phase = None
        self._setup_phase(int(ex["phase"]))
        self.opt.load_state_dict({k[4:]: v for k, v in ex.items() if k.startswith("opt/")})
        self.train_time = float(ex["train_time"])
        self.history = json.loads(str(ex["history"]))

    def _check_resume(self, path: str) -> None:
        from .serialization import NpzReader, read_meta
        with NpzReader(path) as z:
            meta = read_meta(z, path, "checkpoint")
            need = ["extra/step", "extra/phase", "extra/train_time", "extra/history", "extra/opt/t"]
            missing = [k[6:] for k in need if k not in z.entries]
            if "train_config" not in meta or missing:
                raise ValueError(f"{path}: not a training-run checkpoint (it lacks the training state "
                                 f"{missing or ['train_config']}; a file written by tinybin.save holds "
                                 f"weights only: load it with tinybin.load, or train into another folder)")
        defaults = {f"train.{k}": v for k, v in asdict(TrainConfig()).items() if k in _BEYOND_FIELDS}
        saved = {**defaults, **{f"train.{k}": v for k, v in dict(meta["train_config"]).items()},
                 **{f"data.{k}": v for k, v in dict(meta.get("data_settings") or {}).items()}}
        mine = {**{f"train.{k}": v for k, v in asdict(self.cfg).items()},
                **{f"data.{k}": v for k, v in self.data_settings.items()}}
        mine = json.loads(json.dumps(mine))
        differs = {k: (saved.get(k), mine.get(k)) for k in sorted(set(saved) | set(mine))
                   if saved.get(k) != mine.get(k)}
        steps = differs.get("train.steps")
        if steps and isinstance(steps[0], int) and isinstance(steps[1], int) and steps[1] > steps[0]:
            del differs["train.steps"]  # extending a run is allowed
        if differs:
            raise ValueError(f"{path}: checkpoint was trained with a different config; resuming needs "
                             f"the same settings, these differ {{setting: (checkpoint, now)}}: {differs} "
                             f"(use another output folder, or restart)")


# ---- beyond the paper: quantization stages and distillation ----------------------------------

# TrainConfig fields added for the beyond-the-paper options; a checkpoint written before them resumes as their defaults.
_BEYOND_FIELDS = ("progressive_steps", "progressive_stages", "reverse_init_steps", "distill_teacher",
                  "distill_weight", "distill_temperature")


def quantization_state(step: int, cfg: TrainConfig) -> tuple[str, str, float] | None:
    """What the binary units compute at `step`: (lo, hi, fraction) for `nn.set_quantization`, or
    None for the fully binary network. A pure function of the step (resuming replays it exactly).

    Bulat et al., "Improved training of binary networks ..." (arXiv:1904.05868) name two training
    changes; the text we could consult gives no schedule, so these are our documented readings:

    reverse-order initialisation (reverse_init_steps = R > 0): binarize in the reverse of the
      usual order (Zhuang et al. 2018 quantize weights first, then activations): the first R steps
      train the network with binary activations and real-valued weights (mode "act":
      conv(sign(x), W)), which then initialises the fully binary network trained for the remaining
      steps (one run, the optimizer state and learning-rate schedule carry over).
    progressive quantization (progressive_steps = P > 0, progressive_stages = S): binarize
      gradually instead of from step 0. During a ramp of P steps, a fraction
      floor(S * t / P) / S of every unit's output channels (0, 1/S, ..., (S-1)/S; S = 4 gives
      0, 25, 50, 75 %) computes the quantized mode and the rest the previous one; after it, all.
      Alone it ramps from the real twin (mode "real": BN -> ReLU -> conv(W)) to the binary unit,
      so step 0 computes exactly the real-valued network. With reverse-order initialisation, the
      first ramp (steps [0, P)) goes real -> "act" inside the R steps and the second (steps
      [R, R + P)) goes "act" -> binary.
    """
    R, P, S = cfg.reverse_init_steps, cfg.progressive_steps, cfg.progressive_stages

    def ramp(t: int) -> float:
        return 1.0 if P == 0 or t >= P else (S * t // P) / S

    if R == 0:
        f = ramp(step)
        return None if f >= 1 else ("real", "binary", f)
    if step < R:
        f = ramp(step)
        return ("act", "act", 1.0) if f >= 1 else ("real", "act", f)
    f = ramp(step - R)
    return None if f >= 1 else ("act", "binary", f)


def load_teacher(path: str) -> Module:
    """The distillation teacher: the network a checkpoint was saved from, in eval mode, frozen."""
    from .serialization import load_network
    net = load_network(path)
    net.eval()
    net.requires_grad_(False)
    return net


def distillation_loss(student: Tensor, teacher: np.ndarray, loss: str = "bce", temperature: float = 1.0) -> Tensor:
    """Knowledge distillation on heatmaps (arXiv:1904.05868 combines binarization with it).

    The teacher's maps become the targets of the task's own loss, over every landmark (the teacher
    has a map for occluded and unannotated ones too):
      bce: T^2 * sigmoid_bce(s / T, sigmoid(t / T)) -- the pixel-wise sigmoid cross-entropy of the
           paper's eq. 2 against the teacher's probabilities softened by the temperature T; the T^2
           keeps the gradient's size independent of T (Hinton et al. 2015). Its gradient w.r.t. s is
           T * (sigmoid(s / T) - sigmoid(t / T)) / (N * K).
      mse: mse(s, t) -- the teacher's raw output as the regression target (T does not apply).
    student (N, h, w, K) logits (a Tensor); teacher (N, h, w, K) logits (an array, no gradient).
    """
    t = np.asarray(teacher)
    if t.shape != student.shape:
        raise ValueError(f"distillation_loss: teacher maps {t.shape} and student maps {student.shape} differ")
    if loss == "bce":
        T = float(temperature)
        target = sigmoid_np((t / T).astype(student.dtype))
        return losses.sigmoid_bce(student * (1.0 / T), target) * (T * T)
    if loss == "mse":
        return losses.mse(student, t.astype(student.dtype))
    raise ValueError(f"distillation_loss: defined for the heatmap losses bce and mse, not {loss!r}")


def distillation_term(net_out, teacher: Module, x: np.ndarray, cfg: TrainConfig, active=None) -> Tensor:
    """distill_weight * sum over the (active) student stacks of distillation_loss against the
    teacher's last-stack maps, the teacher run in eval mode without gradients on the same batch."""
    with no_grad():
        t = _as_list(teacher(Tensor(x)))[-1].data
    outs = _as_list(net_out)
    total = None
    for i in (range(len(outs)) if active is None else active):
        kd = distillation_loss(outs[i], t, cfg.loss, cfg.distill_temperature)
        total = kd if total is None else total + kd
    return total * cfg.distill_weight


def data_settings(data) -> dict[str, Any]:
    """What identifies a training set, stored with a run: `data.settings()` when it has one, else
    its class, length, kind and its plain public attributes (n, resolution, seed, difficulty,
    split, ...), with those of a wrapped dataset under `<attribute>.<name>`."""
    if callable(getattr(data, "settings", None)):
        return json.loads(json.dumps(data.settings()))
    out: dict[str, Any] = {"class": type(data).__name__, "len": len(data), "kind": getattr(data, "kind", None)}
    for k, v in sorted(vars(data).items()) if hasattr(data, "__dict__") else ():
        if k.startswith("_"):
            continue
        if v is None or isinstance(v, (bool, int, float, str, np.integer, np.floating, np.bool_)):
            out[k] = v.item() if isinstance(v, np.generic) else v
        elif hasattr(v, "__len__") and hasattr(v, "batch"):
            out.update({f"{k}.{kk}": vv for kk, vv in data_settings(v).items()})
    return json.loads(json.dumps(out))


def _check_out_dir(out_dir: str | None, create: bool = False) -> None:
    """ValueError at once (not at the first checkpoint) for an output folder that is a file, has
    a file where its checkpoint goes, or cannot be written."""
    if not out_dir:
        return
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"output folder {out_dir!r} is a file, not a folder")
    parent = os.path.abspath(out_dir)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"output folder {out_dir!r}: {parent!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"output folder {out_dir!r}: {parent!r} is not writable")
    ck = os.path.join(out_dir, "checkpoint.npz")
    if os.path.isdir(ck):
        raise ValueError(f"output folder {out_dir!r}: {ck!r} is a folder, where the checkpoint goes")
    if create:
        os.makedirs(out_dir, exist_ok=True)


__all__ = ["TrainConfig", "Trainer", "TrainingInterrupted", "evaluate", "predict", "predict_points", "compute_loss",
           "annotated", "heatmap_targets", "mask_targets", "make_optimizer", "write_json", "METRICS", "register_metric",
           "TARGETS", "data_settings", "quantization_state", "distillation_loss", "load_teacher"]
