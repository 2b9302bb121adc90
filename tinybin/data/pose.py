"""``SyntheticPose``: procedurally rendered people with the 16 MPII joints (stand-in for MPII,
paper section 6.2)."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..metrics import head_size
from ..skeletons import MPII_FLIP
from .render import H_S, DisplayList, head_params, render_list
from .scenes import (_background, _clamp, _cloth, _clutter, _convex_hull, _finish, _hair, _luma, _occluders,
                     _rx, _ry, _rz, _skin, _unit)
from .synthetic import _batch, _Synthetic


# ============================================================================================
# 3. SyntheticPose: articulated figures with the 16 MPII joints
# ============================================================================================
#
# Body frame (units of standing height H): origin at the pelvis, x = the person's LEFT, y = down,
# z = backwards (away from the camera when the figure faces it). Camera: x right, y down, z away.
# A figure with yaw 0 faces the camera, so its left side is on the image's right.

_BODY = dict(hip=0.055, thigh=0.245, shin=0.245, spine=0.29, neck=0.05, head=0.13, shoulder=0.115,
             upper_arm=0.175, forearm=0.15, hand=0.06, foot=0.075)
_FWD = np.array([0.0, -0.25, -1.0])            # preferred elbow bend direction (forward, slightly up)

# Full joint-angle ranges (degrees): everything the sampler may produce after jitter.
_ARM_RANGE = ((0, 180), (-70, 160), (0, 155))          # elevation, azimuth, elbow flexion
_LEG_RANGE = ((-35, 125), (-20, 70), (0, 155))         # hip flexion, abduction, knee flexion
_TORSO_RANGE = ((-25, 75), (-35, 35), (-45, 45))       # lean forward, side bend, twist


def _sample_pose(rng, d):
    """Joint angles (degrees) for one figure; ``d`` widens the ranges and raises the share of
    unusual families (crossed arms, crouching, kicks, random limbs, rolled or upside-down bodies)."""
    U = rng.uniform
    fams = ("stand", "walk", "raise", "cross", "crouch", "kick", "random")
    p = np.array([0.32 - 0.16 * d, 0.2, 0.12, 0.06 + 0.06 * d, 0.08 + 0.06 * d, 0.05 + 0.05 * d, 0.02 + 0.3 * d])
    fam = fams[rng.choice(len(fams), p=p / p.sum())]
    arm, leg = {}, {}
    torso = [rng.normal(0, 4), rng.normal(0, 4), rng.normal(0, 8)]
    for s in (-1, 1):
        arm[s] = [U(0, 35), U(-40, 70), U(0, 50), _FWD]
        leg[s] = [U(-8, 12), U(-3, 15), U(0, 15)]
    if fam == "walk":
        sw, k0 = U(15, 55), rng.choice((-1, 1))
        for s in (-1, 1):
            k = k0 * s
            arm[s] = [sw * U(0.6, 1.2), 90 if k > 0 else -90, U(10, 100) if k > 0 else U(0, 40), _FWD]
            leg[s] = [-k * sw * U(0.6, 1.2), U(0, 8), U(5, 30) if k > 0 else U(20, 100)]
        torso[0] = U(-5, 20)
    elif fam == "raise":
        for s in (-1, 1):
            arm[s] = [U(80, 178), U(-20, 90), U(0, 80), _unit(_FWD + rng.normal(0, 0.6, 3))]
    elif fam == "cross":
        for s in (-1, 1):
            arm[s] = [U(15, 60), U(80, 130), U(85, 145), np.array([-s * 1.0, -0.3, -0.4])]
    elif fam == "crouch":
        for s in (-1, 1):
            leg[s] = [U(50, 120), U(0, 35), U(60, 150)]
            arm[s] = [U(10, 90), U(20, 120), U(10, 120), _FWD]
        torso[0] = U(10, 60)
    elif fam == "kick":
        s0 = rng.choice((-1, 1))
        leg[s0] = [U(40, 115), U(-5, 35), U(0, 70)]
        leg[-s0] = [U(-10, 10), U(0, 15), U(0, 30)]
        for s in (-1, 1):
            arm[s] = [U(30, 150), U(-30, 60), U(0, 90), _FWD]
    elif fam == "random":
        for s in (-1, 1):
            arm[s] = [U(*r) for r in _ARM_RANGE] + [_unit(rng.normal(size=3))]
            leg[s] = [U(*r) for r in _LEG_RANGE]
        torso = [U(*r) for r in _TORSO_RANGE]
    j = 14.0 * d                                        # difficulty jitter on every angle
    noise = rng.normal(0, 1, 15)
    for k, s in enumerate((-1, 1)):
        arm[s][:3] = [_clamp(v + j * e, *r) for v, e, r in zip(arm[s][:3], noise[6 * k:6 * k + 3], _ARM_RANGE)]
        leg[s] = [_clamp(v + j * e, *r) for v, e, r in zip(leg[s], noise[6 * k + 3:6 * k + 6], _LEG_RANGE)]
    torso = [_clamp(v + 0.5 * j * e, *r) for v, e, r in zip(torso, noise[12:], _TORSO_RANGE)]
    yaw = (rng.normal(0, 30 + 80 * d) + 180) % 360 - 180
    roll = rng.uniform(-180, 180) if rng.random() < 0.13 * d else rng.normal(0, 3 + 8 * d)
    head = [_clamp(rng.normal(0, 15 + 20 * d), -75, 75), rng.normal(0, 8 + 10 * d), rng.normal(0, 5 + 8 * d)]
    return dict(family=fam, arm=arm, leg=leg, torso=torso, head=head, yaw=float(yaw), roll=float(roll))


def _sample_look(rng):
    """Clothing, skin, hair and build: symmetric, so colour never tells left from right."""
    skin = _skin(rng)
    shirt, pants = _cloth(rng), _cloth(rng)
    return dict(skin=skin, shirt=shirt, pants=pants, shoes=_cloth(rng) * 0.6, hair=_hair(rng),
                long_sleeves=rng.random() < 0.5, long_pants=rng.random() < 0.75,
                build=rng.uniform(0.8, 1.25), lengths=rng.normal(1.0, 0.05, 6).clip(0.85, 1.15),
                shirt_stripes=(rng.uniform(0.1, 0.35), rng.uniform(14, 30), rng.uniform(0, 6.3))
                if rng.random() < 0.3 else None,
                front_mark=int(rng.integers(3)),    # 0 V-neck, 1 chest logo, 2 buttons
                mark_col=_cloth(rng),
                hairline=(rng.uniform(-0.2, 0.0), rng.uniform(0.5, 0.7), 0.12) if rng.random() > 0.06
                else (-10.0, 0.0, 0.0))


def _skeleton3d(pose, look):
    """Joint positions (16, 3) in the body frame plus the frames the renderer needs."""
    B = dict(_BODY)
    la, lf, lt, ls, lsp, lh = look["lengths"]
    B["upper_arm"] *= la
    B["forearm"] *= lf
    B["thigh"] *= lt
    B["shin"] *= ls
    B["spine"] *= lsp
    B["head"] *= lh
    rad = np.deg2rad
    J = np.zeros((16, 3))
    pitch, bend, twist = rad(np.array(pose["torso"]))
    Rt = _rx(pitch) @ _rz(bend) @ _ry(twist)            # torso frame in the body frame
    J[6] = 0.0                                          # pelvis
    J[7] = Rt @ np.array([0, -B["spine"], 0])           # thorax
    hy, hp, hr = rad(np.array(pose["head"]))
    Rn = Rt @ _rx(hp * 0.5)
    J[8] = J[7] + Rn @ np.array([0, -B["neck"], 0])     # upper neck
    Rh = Rn @ _rx(hp * 0.5) @ _ry(hy) @ _rz(hr)
    J[9] = J[8] + Rh @ np.array([0, -B["head"], 0])     # head top
    extra = {}
    for s, (sho, elb, wri) in ((1, (13, 14, 15)), (-1, (12, 11, 10))):
        e, phi, beta, pref = pose["arm"][s]
        e, phi, beta = rad(e), rad(phi), rad(beta)
        J[sho] = J[7] + Rt @ np.array([s * B["shoulder"], 0.012, 0])
        du = np.array([s * math.sin(e) * math.cos(phi), math.cos(e), -math.sin(e) * math.sin(phi)])
        n = np.asarray(pref, np.float64) - (np.asarray(pref) @ du) * du
        if np.linalg.norm(n) < 1e-3:
            n = np.array([0, -1.0, 0]) - (-du[1]) * du
        n = _unit(n)
        df = math.cos(beta) * du + math.sin(beta) * n
        J[elb] = J[sho] + Rt @ du * B["upper_arm"]
        J[wri] = J[elb] + Rt @ df * B["forearm"]
        extra[("hand", s)] = J[wri] + Rt @ df * B["hand"]
    for s, (hip, kne, ank) in ((1, (3, 4, 5)), (-1, (2, 1, 0))):
        f, ab, kappa = rad(np.array(pose["leg"][s]))
        J[hip] = np.array([s * B["hip"], 0.0, 0.0])
        ca = math.cos(ab)
        dt = np.array([s * math.sin(ab), ca * math.cos(f), -ca * math.sin(f)])
        g = f - kappa
        ds = _unit(np.array([s * math.sin(ab), ca * math.cos(g), -ca * math.sin(g)]))
        J[kne] = J[hip] + dt * B["thigh"]
        J[ank] = J[kne] + ds * B["shin"]
        extra[("toe", s)] = J[ank] + np.array([0, -math.sin(g) + 0.35, -math.cos(g)]) * B["foot"]
    extra["Rt"], extra["Rh"] = Rt, Rh
    return J, extra


def _body_rotation(pose):
    """Body frame -> camera: yaw about the vertical (positive turns the figure's front towards the
    image right, as for faces), then roll in the image plane."""
    return _rz(math.radians(pose["roll"])) @ _ry(-math.radians(pose["yaw"]))


def _figure(dl, out, pose, look, size, offset, rng, light, with_details=True, skeleton=None):
    """Append the figure's primitives to ``out`` as (depth, row) pairs (rows built with ``dl``, whose
    data array they index); return joints (16, 2), their depths (16,), the head silhouette box
    [[x1, y1], [x2, y2]] and the chest yaw (degrees, ``SyntheticPose.facing``)."""
    J, ex = _skeleton3d(pose, look) if skeleton is None else skeleton
    Rg = _body_rotation(pose)

    def proj(p):
        c = np.asarray(p, np.float64) @ Rg.T
        return c[..., :2] * size + offset, c[..., 2]

    J2, Jz = proj(J)
    bld = look["build"] * size
    skin, shirt, pants = look["skin"], look["shirt"], look["pants"]

    # Project every 3D point the limbs use at once (joints, hands, toes).
    keys = [("hand", 1), ("hand", -1), ("toe", 1), ("toe", -1)]
    P2, Pz = proj(np.concatenate([J, np.array([ex[k] for k in keys])]))
    idx = {k: 16 + n for n, k in enumerate(keys)}

    def limb(a, b, r0, r1, col, shade=0.55, stripe=None, bias=0.0):
        a, b = idx.get(a, a), idx.get(b, b)
        pa, za, pb, zb = P2[a], Pz[a], P2[b], Pz[b]
        st = None
        if stripe is not None:
            v = _unit(pb - pa)
            st = (v[0], v[1], stripe[1] / (size * 1.0), stripe[0], stripe[2])
        out.append((0.5 * (za + zb) + bias, dl.capsule(pa, pb, r0 * bld, r1 * bld, col, shade=shade, stripe=st)))

    sleeve = shirt if look["long_sleeves"] else skin
    leg_lo = pants if look["long_pants"] else skin
    stripes = look["shirt_stripes"]
    for s, (sho, elb, wri) in ((1, (13, 14, 15)), (-1, (12, 11, 10))):
        limb(sho, elb, 0.036, 0.029, shirt, stripe=stripes)
        limb(elb, wri, 0.028, 0.022, sleeve, stripe=stripes if look["long_sleeves"] else None)
        limb(wri, ("hand", s), 0.02, 0.017, skin, shade=0.3, bias=-1e-3)
    for s, (hip, kne, ank) in ((1, (3, 4, 5)), (-1, (2, 1, 0))):
        limb(hip, kne, 0.062, 0.045, pants)
        limb(kne, ank, 0.042, 0.029, leg_lo)
        limb(ank, ("toe", s), 0.024, 0.02, look["shoes"], shade=0.3, bias=-1e-3)
    limb(7, 8, 0.027, 0.025, skin * 0.9, shade=0.3, bias=0.03)
    # Torso: convex hulls of projected 3D corners (shirt over pants) and shoulder/pelvis bars.
    Rt = ex["Rt"]
    sx = np.array([-1, 1, -1, 1])
    sz = np.array([-1, -1, 1, 1])
    chest = J[7] + (np.stack([0.12 * sx, np.full(4, 0.015), 0.06 * sz], 1) * [look["build"] ** 0.5, 1, 1]) @ Rt.T
    waist = J[7] + (np.stack([0.1 * sx, np.full(4, 0.62 * _BODY["spine"]), 0.055 * sz], 1)
                    * [look["build"] ** 0.5, 1, 1]) @ Rt.T
    hips = np.stack([0.11 * sx * look["build"] ** 0.5, np.full(4, 0.045), 0.07 * sz], 1)
    tz = 0.5 * (Jz[6] + Jz[7])
    pts, _ = proj(np.concatenate([waist, hips]))
    out.append((tz + 2e-3, dl.polygon(_convex_hull(pts), pants, rounding=0.02 * bld,
                                      grad=tuple(rng.normal(0, 0.4, 2) / size))))
    pts, _ = proj(np.concatenate([chest, waist]))
    out.append((tz + 1e-3, dl.polygon(_convex_hull(pts), shirt, rounding=0.025 * bld,
                                      grad=tuple(rng.normal(0, 0.4, 2) / size))))
    limb(12, 13, 0.04, 0.04, shirt, shade=0.35, bias=1e-3)
    # Front cue on the chest, drawn only when the chest faces the camera.
    front = Rg @ Rt @ np.array([0, 0, -1.0])
    if with_details and front[2] < -0.25:
        if look["front_mark"] == 0:
            v = J[7] + np.array([[-0.045, -0.004, -0.064], [0.045, -0.004, -0.064], [0, 0.07, -0.068]]) @ Rt.T
            pts, _ = proj(v)
            out.append((tz - 1e-3, dl.polygon(pts, skin, rounding=0.004 * size)))
        elif look["front_mark"] == 1:
            (c,), _ = proj((J[7] + Rt @ np.array([0.0, 0.09, -0.068]))[None])
            out.append((tz - 1e-3, dl.ellipse(c, 0.035 * size, 0.035 * size * max(-front[2], 0.2), 0.0,
                                               look["mark_col"])))
        else:
            for t in (0.04, 0.09, 0.14):
                (c,), _ = proj((J[7] + Rt @ np.array([0.0, t, -0.068]))[None])
                out.append((tz - 1e-3, dl.ellipse(c, 0.011 * size, 0.011 * size, 0.0, look["mark_col"])))
    # Head: a shaded ellipsoid, hair over the back and top, so the face side reads as skin.
    Rh = ex["Rh"]
    Rhc = Rg @ Rh
    hc3 = 0.5 * (J[8] + J[9]) + Rh @ np.array([0, 0, -0.004])
    (hc,), hz = proj(hc3[None])
    radii = np.array([0.049, 0.5 * np.linalg.norm(J[9] - J[8]), 0.056]) * size
    hp = head_params(hc, Rhc, radii, skin, look["hair"], hairline=look["hairline"], light=light)
    out.append((float(hz[0]), dl.head(hp)))
    if with_details:
        for ex_, ey_ in ((-0.36, -0.02), (0.36, -0.02)):       # eyes, where the face points at us
            u = _unit([ex_, ey_, -0.93])
            if (Rhc @ u)[2] < -0.2 and 0.012 * size > 0.3:
                c = hc + (Rhc @ (u * radii))[:2]
                out.append((float(hz[0]) - 1e-3, dl.ellipse(c, 0.009 * size, 0.009 * size, 0.0, (0.1, 0.07, 0.06),
                                                            alpha=0.8)))
    S = np.array([[hp[H_S], hp[H_S + 1]], [hp[H_S + 1], hp[H_S + 2]]])
    ext = np.sqrt(np.diag(np.linalg.inv(S)))
    headbox = np.array([hc - ext, hc + ext])
    chest_yaw = (pose["yaw"] - pose["torso"][2] + 180.0) % 360.0 - 180.0
    return J2, Jz, headbox, float(chest_yaw)


class SyntheticPose(_Synthetic):
    """Procedurally rendered people with the 16 MPII joints (stand-in for MPII, paper section 6.2).

    ``ds[i]`` is a dict, deterministic per (seed, split, i):
      image (R, R, 3) float32 in [0, 1]; points (16, 2) float32 (MPII order, the *person's*
      left/right); visible (16,) float32 (in the frame and not behind an occluding blob);
      occluded (16,) float32 (in the frame but hidden by an occluder; coordinates still exact);
      head_size float32 (PCKh normaliser 0.6 x head-box diagonal; the head box is the head
      silhouette's bounding box enlarged 1.25x, which matches MPII's head-size / height ratio);
      center (2,) float32, scale float32 (box side / 200 with MPII's 1.25 padding, so
      ``crop_transform(center, scale, R)`` frames the person); facing float32 (chest yaw in
      degrees: 0 = facing the camera, +90 = the chest turned to the image right (the person turned
      to their left), +-180 = seen from the back; the same sign convention as the faces' yaw).

    Figures: a kinematic skeleton with adult proportions and per-person jitter, pose families
    (standing, walking, raised or crossed arms, crouching, kicks, random limbs; rare rolled or
    upside-down bodies), 3D rotation about the vertical, painter's-order rendering with anti-aliased
    tapered limbs. Left and right limbs share clothing, so only geometry and the facing cues (face vs
    hair on the head, a chest mark, feet pointing forwards) tell them apart.

    ``difficulty`` in [0, 1] widens pose and yaw ranges and raises clutter, distractor strokes, a
    second partial person, occluders, truncation at the border, blur, noise and lighting changes.
    """

    kind = "pose"
    num_points = 16

    @property
    def flip_perm(self) -> np.ndarray:
        return MPII_FLIP

    def _render(self, rng, impl=render_list):
        R, d = self.resolution, self.difficulty
        pose, look = _sample_pose(rng, d), _sample_look(rng)
        light = (rng.normal(0, 0.5), rng.normal(-0.5, 0.3), -1.0)
        size = R / 1.25 * rng.uniform(0.85, 1.1)
        # Place the joints' box centre near the image centre, then maybe push part of the figure
        # out of the frame (truncation) or zoom in.
        skel = _skeleton3d(pose, look)
        J = skel[0]
        Rg = _body_rotation(pose)
        j2 = (J @ Rg.T)[:, :2]
        mid = 0.5 * (j2.min(0) + j2.max(0))
        target = np.full(2, (R - 1) / 2) + rng.normal(0, 0.04 * R, 2)
        if rng.random() < 0.3 * d:
            if rng.random() < 0.5:
                target += _unit(rng.normal(size=2)) * R * rng.uniform(0.15, 0.4)
            else:
                size *= rng.uniform(1.1, 1.4)
        offset = target - mid * size
        palette = [look["skin"], look["shirt"], look["pants"]]
        bg = _background(rng, R, d, avoid_luma=_luma(look["shirt"]))
        dl = DisplayList()
        _clutter(dl, rng, R, d, palette)
        if rng.random() < 0.35 * d:                        # a second, partial person behind
            p2, l2 = _sample_pose(rng, d), _sample_look(rng)
            parts = []
            off2 = target + np.array([rng.choice((-1, 1)) * rng.uniform(0.45, 0.8) * R, rng.normal(0, 0.1 * R)])
            _figure(dl, parts, p2, l2, size * rng.uniform(0.7, 1.1), off2, rng, light, with_details=False)
            for _, row in sorted(parts, key=lambda t: -t[0]):
                dl.add(row)
        parts = []
        pts, _, headbox, facing = _figure(dl, parts, pose, look, size, offset, rng, light, skeleton=skel)
        for _, row in sorted(parts, key=lambda t: -t[0]):   # painter's order: far parts first
            dl.add(row)
        _occluders(dl, rng, R, d, pts, 0.55 * d, size)
        prims, data = dl.arrays()
        occ = np.zeros((R, R), np.float32)
        labels = np.zeros((R, R), np.uint8)
        impl(bg, occ, labels, prims, data)
        img = _finish(bg, rng, R, d)
        inside = np.all((pts >= 0) & (pts <= R - 1), axis=1)
        ij = np.clip(np.rint(pts).astype(int), 0, R - 1)
        hidden = inside & (occ[ij[:, 1], ij[:, 0]] > 0.5)
        hb = headbox.mean(0) + 1.25 * (headbox - headbox.mean(0))
        return dict(image=img, points=pts.astype(np.float32), visible=(inside & ~hidden).astype(np.float32),
                    occluded=hidden.astype(np.float32), head_size=np.float32(head_size(hb)),
                    center=target.astype(np.float32), scale=np.float32(1.25 * size / 200.0),
                    facing=np.float32(facing))

    def batch(self, indices: Iterable[int], augment: bool = False, rng: np.random.Generator | None = None,
              **augment_kw) -> dict:
        """Stack samples into arrays (image (N, R, R, 3), points (N, 16, 2), ...).

        augment=True crops each sample through ``tinybin.transforms.augment`` (rotation +-40 deg,
        scale 0.7-1.3, flip with ``MPII_FLIP``, colour jitter; override with ``augment_kw``) using
        ``rng`` (required). Joints leaving the crop become invisible; head_size, center and scale
        follow the crop.
        """
        return _batch(self, indices, augment, rng, augment_kw)
