"""Loaders for the real formats: MPII (``.mat`` and JSON), LSP / LSPET, 300W ``.pts`` folders and
AFLW2000-3D, and ``RecordDataset`` which crops their records like the synthetic sets."""

from __future__ import annotations

import math
import os
from typing import Iterable, Sequence

import numpy as np

from ..metrics import head_size
from ..skeletons import lsp_to_mpii
from ..transforms import augment as _augment
from ..transforms import center_scale_from_points
from .augment import AUGMENT, NO_AUGMENT, _face_center_scale
from .kinds import get_kind
from .scenes import _stack


# ============================================================================================
# 5. Loaders for the real formats
# ============================================================================================
#
# Every loader returns a list of ``Record`` dicts with the sample keys above; ``record["image"]``
# is read with Pillow on first access (from ``image_path``) and then kept. All coordinates are
# converted from MATLAB / .pts 1-based pixels to tinybin's 0-based ones on load (x - 1, y - 1).

class Record(dict):
    """A sample dict whose ``"image"`` is loaded lazily from ``"image_path"`` on first access.

    ``"image" in rec`` is False until it has been loaded; ``rec["image"]`` loads it (float32
    (H, W, 3) in [0, 1]); a record without an image path raises KeyError.
    """

    def __missing__(self, key):
        if key == "image" and self.get("image_path"):
            img = load_image(self["image_path"])
            self["image"] = img
            return img
        raise KeyError(key)


def load_image(path) -> np.ndarray:
    """Read an image file: (H, W, 3) float32 RGB in [0, 1], every PIL mode mapped by its full range
    (16-bit, float, palette, alpha; `tinybin.images.read_image`). Unreadable, unsupported or
    too large (decompression bomb) -> ValueError."""
    from ..images import read_image
    try:
        return read_image(path)
    except ValueError as e:
        raise ValueError(f"load_image: {e}") from None


_F32_MAX = float(np.finfo(np.float32).max)


def _read_text(p: str, who: str) -> str:
    """A text file as str: UTF-8 (a BOM is dropped) or UTF-16/32 with a BOM; ValueError otherwise."""
    try:
        with open(p, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ValueError(f"{who}: cannot read {p!r}: {e}") from None
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                     (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if raw.startswith(bom):
            break
    else:
        enc = "utf-8"
    try:
        return raw.decode(enc)
    except UnicodeDecodeError as e:
        raise ValueError(f"{who}: {p!r} is not UTF-8 or UTF-16/32 text with a BOM ({e})") from None


def _read_json(p: str, who: str):
    import json
    text = _read_text(p, who)
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{who}: {p!r}: JSON nested too deeply") from None
    except ValueError as e:
        raise ValueError(f"{who}: cannot read JSON {p!r}: {e}") from None


def read_pts(path) -> np.ndarray:
    """Read an iBUG / 300W ``.pts`` file: (K, 2) float32 0-based (x, y) (the file is 1-based).

    Format: header lines (``version: 1``, ``n_points:  68``; spacing varies), a line starting with
    ``{``, one ``x y`` pair per line, a line starting with ``}`` (a trailing newline is optional).
    Any point count is accepted; if the header states ``n_points`` the count must agree.
    The text may be UTF-8 (with or without a BOM, also one right before ``{``) or UTF-16/32 with
    a BOM. Raises ValueError naming the file for: no ``{``, no ``}``, a line without two numbers,
    non-numeric or non-finite values or values beyond float32, a bad ``n_points`` header, a count
    that disagrees with it, undecodable text.
    """
    p = os.fspath(path)
    lines = [ln.replace("\ufeff", "") for ln in _read_text(p, "read_pts").splitlines()]
    n_expected = None
    i = 0
    while i < len(lines) and not lines[i].lstrip().startswith("{"):
        ln = lines[i].strip()
        if ln.lower().startswith("n_points"):
            try:
                n_expected = int(ln.split(":", 1)[1])
            except (IndexError, ValueError):
                raise ValueError(f"read_pts: {p!r} line {i + 1}: bad n_points header {ln!r}") from None
        i += 1
    if i == len(lines):
        raise ValueError(f"read_pts: {p!r}: no line starting with '{{' (not a .pts file?)")
    pts, closed = [], False
    for j in range(i + 1, len(lines)):
        ln = lines[j].strip()
        if not ln:
            continue
        if ln.startswith("}"):
            closed = True
            break
        parts = ln.split()
        if len(parts) < 2:
            raise ValueError(f"read_pts: {p!r} line {j + 1}: expected two numbers 'x y', got {ln!r}")
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"read_pts: {p!r} line {j + 1}: non-numeric value in {ln!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"read_pts: {p!r} line {j + 1}: non-finite value in {ln!r}")
        if max(abs(x), abs(y)) > _F32_MAX:
            raise ValueError(f"read_pts: {p!r} line {j + 1}: value beyond the float32 range in {ln!r}")
        pts.append((x, y))
    if not closed:
        raise ValueError(f"read_pts: {p!r}: missing closing '}}' after {len(pts)} points (truncated file?)")
    if n_expected is not None and len(pts) != n_expected:
        raise ValueError(f"read_pts: {p!r}: header says n_points {n_expected} but the file has {len(pts)} points")
    return np.asarray(pts, np.float32).reshape(-1, 2) - 1.0


_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".JPG", ".JPEG", ".PNG", ".BMP")


def load_300w(folder, expect_points: int | None = 68) -> list[Record]:
    """All ``.pts`` files under ``folder`` (recursively, sorted), each paired with the image of the
    same stem (.jpg/.jpeg/.png/.bmp) beside it.

    Record keys: points (K, 2) float32 0-based, visible (K,) ones, center, scale (FAN face box rule,
    ``FACE_SCALE_DIVISOR``), image_path, name (path relative to ``folder`` without extension).
    Raises ValueError for: no .pts files, a .pts without its image (naming both), a point count
    other than ``expect_points`` (None accepts any), and any ``read_pts`` error.
    """
    root = os.fspath(folder)
    if not os.path.isdir(root):
        raise ValueError(f"load_300w: {root!r} is not a directory")
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.lower().endswith(".pts"))
    if not files:
        raise ValueError(f"load_300w: no .pts files under {root!r}")
    out = []
    for f in files:
        pts = read_pts(f)
        if expect_points is not None and len(pts) != expect_points:
            raise ValueError(f"load_300w: {f!r} has {len(pts)} points, expected {expect_points}")
        stem = os.path.splitext(f)[0]
        img = next((stem + e for e in _IMAGE_EXTS if os.path.isfile(stem + e)), None)
        if img is None:
            raise ValueError(f"load_300w: missing image for {f!r} (looked for {os.path.basename(stem)}"
                             f"{{{','.join(_IMAGE_EXTS[:4])}}})")
        c, s = _face_center_scale(pts)
        out.append(Record(points=pts, visible=np.ones(len(pts), np.float32), center=c, scale=s,
                          image_path=img, name=os.path.relpath(stem, root)))
    return out


def _loadmat(path, who, squeeze=True):
    from scipy.io import loadmat
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise ValueError(f"{who}: no such file {p!r}")
    try:
        return loadmat(p, struct_as_record=False, squeeze_me=squeeze)
    except Exception as e:       # scipy raises several types for truncated / foreign files
        raise ValueError(f"{who}: cannot read MATLAB file {p!r} ({type(e).__name__}: {e})") from e


def _is_empty(v) -> bool:
    return v is None or (isinstance(v, np.ndarray) and v.size == 0)


def _scalar(v, default=None):
    """A MATLAB scalar (possibly a 0-d / 1-element array, a string) as float, else ``default``."""
    if _is_empty(v):
        return default
    if isinstance(v, np.ndarray):
        v = v.ravel()[0]
    if isinstance(v, (bytes, np.bytes_)):
        v = v.decode(errors="replace")
    if isinstance(v, str):
        v = v.strip()
        try:
            return float(v)
        except ValueError:
            return default
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def _structs(v) -> list:
    """A squeezed MATLAB struct array as a list (empty, one struct or an array of them)."""
    if _is_empty(v):
        return []
    return list(np.atleast_1d(v).ravel())


def _image_path(image_dir, name, who):
    """image_dir/name, refusing names that leave the folder (absolute, ``..``); ValueError."""
    if image_dir is None:
        return None
    root = os.path.normpath(os.fspath(image_dir))
    if not isinstance(name, str) or not name or os.path.isabs(name) or "\0" in name:
        raise ValueError(f"{who}: image name {name!r} is not a relative path inside the image folder")
    p = os.path.normpath(os.path.join(root, name))
    if os.path.relpath(p, root).split(os.sep)[0] == os.pardir:
        raise ValueError(f"{who}: image name {name!r} points outside the image folder {root!r}")
    if not os.path.isfile(p):
        raise ValueError(f"{who}: missing image {p!r}")
    return p


def _valid_person(cx, cy, scale) -> bool:
    """A usable MPII person: finite centre, finite positive scale, all within float32."""
    v = (cx, cy, scale)
    return all(math.isfinite(t) and abs(t) <= _F32_MAX for t in v) and scale > 0


def _mpii_crop(objpos, scale):
    # MPII's objpos/scale -> the crop convention used everywhere (HRNet, bearpaw, Newell):
    # centre moved down 15 * scale, box enlarged 1.25x; objpos is 1-based.
    c = np.array([objpos[0], objpos[1] + 15.0 * scale], np.float32) - 1.0
    return c, np.float32(1.25 * scale)


def load_mpii_mat(path, image_dir=None, annotated_only: bool = True) -> list[Record]:
    """Read the official MPII ``mpii_human_pose_v1_u12_1.mat`` (struct ``RELEASE``).

    One record per person (``annolist(i).annorect(r)``) with keys: points (16, 2) float32 0-based
    (0 where missing); visible (16,) float32 = annotated; is_visible (16,) float32 (MPII's
    ``is_visible``; missing, empty or unparsable values count as 1, strings '0'/'1' are read);
    head_size float32 (0.6 x head-box diagonal, NaN without a box) and headbox (2, 2) 0-based;
    center (2,), scale: the crop convention (``objpos`` 0-based with y + 15 scale, scale x 1.25);
    mpii_center, mpii_scale (the raw values, centre 0-based); image_name, image_path (when
    ``image_dir`` is given; every image must exist), is_train (``img_train``), annolist_index,
    person_index. annotated_only=True skips people without joints (e.g. the test set).
    People without ``objpos``/``scale``, with a non-finite or non-positive scale, a non-finite
    centre, or a non-finite joint coordinate are skipped. Malformed files and image names that
    leave ``image_dir`` raise ValueError.
    """
    who = "load_mpii_mat"
    p = os.fspath(path)
    m = _loadmat(p, who)
    if "RELEASE" not in m:
        raise ValueError(f"{who}: {p!r} has no 'RELEASE' struct (keys: {sorted(k for k in m if not k.startswith('__'))})")
    rel = m["RELEASE"]
    if not hasattr(rel, "annolist"):
        raise ValueError(f"{who}: {p!r}: RELEASE has no 'annolist' field")
    annolist = _structs(rel.annolist)
    train = np.atleast_1d(getattr(rel, "img_train", np.ones(len(annolist)))).ravel()
    out = []
    for i, ann in enumerate(annolist):
        image = getattr(ann, "image", None)
        name = getattr(image, "name", None) if image is not None else None
        if not isinstance(name, str):
            raise ValueError(f"{who}: {p!r}: annolist({i + 1}).image.name is missing")
        for r, rect in enumerate(_structs(getattr(ann, "annorect", None))):
            objpos = getattr(rect, "objpos", None)
            scale = _scalar(getattr(rect, "scale", None))
            ox = _scalar(getattr(objpos, "x", None)) if not _is_empty(objpos) else None
            oy = _scalar(getattr(objpos, "y", None)) if not _is_empty(objpos) else None
            if scale is None or ox is None or oy is None or not _valid_person(ox, oy, scale):
                continue
            pts = np.zeros((16, 2), np.float32)
            vis = np.zeros(16, np.float32)
            isv = np.zeros(16, np.float32)
            bad_joint = False
            ap = getattr(rect, "annopoints", None)
            for pt in _structs(getattr(ap, "point", None) if not _is_empty(ap) else None):
                jid, x, y = (_scalar(getattr(pt, k, None)) for k in ("id", "x", "y"))
                if jid is None or x is None or y is None:
                    raise ValueError(f"{who}: {p!r}: annolist({i + 1}).annorect({r + 1}) has a point "
                                     "without numeric id/x/y")
                if not (0 <= jid <= 15 and jid == int(jid)):
                    raise ValueError(f"{who}: {p!r}: annolist({i + 1}).annorect({r + 1}): joint id {jid} "
                                     "is not in 0..15")
                j = int(jid)
                if not (math.isfinite(x) and math.isfinite(y) and max(abs(x), abs(y)) <= _F32_MAX):
                    bad_joint = True
                    break
                pts[j] = (x - 1.0, y - 1.0)
                vis[j] = 1.0
                isv[j] = 1.0 if _scalar(getattr(pt, "is_visible", None), 1.0) != 0 else 0.0
            if bad_joint or (annotated_only and not vis.any()):
                continue
            box = [_scalar(getattr(rect, k, None)) for k in ("x1", "y1", "x2", "y2")]
            if None in box:
                hb, hs = np.full((2, 2), np.nan, np.float32), np.float32(np.nan)
            else:
                hb = np.array(box, np.float32).reshape(2, 2) - 1.0
                try:
                    hs = np.float32(head_size(hb))
                except ValueError:
                    hs = np.float32(np.nan)
            c, s = _mpii_crop((ox, oy), scale)
            out.append(Record(points=pts, visible=vis, is_visible=isv, head_size=hs, headbox=hb, center=c,
                              scale=s, mpii_center=np.array([ox - 1, oy - 1], np.float32),
                              mpii_scale=np.float32(scale), image_name=name,
                              image_path=_image_path(image_dir, name, who),
                              is_train=int(train[i]) if i < len(train) else -1,
                              annolist_index=i, person_index=r))
    return out


def load_mpii_json(path, image_dir=None) -> list[Record]:
    """Read an MPII annotation JSON of the HRNet / mmpose layout: a list of
    ``{"image", "center", "scale", "joints" (16 x [x, y]), "joints_vis" (16)}`` (1-based pixels;
    missing joints are ``[-1, -1]`` with vis 0; test files may lack joints).

    Record keys: points (16, 2) float32 0-based (joints - 1, kept for missing joints), visible
    (16,) = joints_vis, head_size NaN (the JSON has no head boxes), center/scale in the crop
    convention (y + 15 scale, x 1.25, then - 1, as HRNet does on load), mpii_center, mpii_scale,
    image_name, image_path (when ``image_dir`` is given). A record without ``joints`` has no
    visible joints whatever its ``joints_vis`` says. Records with a non-finite or non-positive
    scale, a non-finite centre, or non-finite (or beyond float32) coordinates of a visible joint
    are skipped. Malformed files, and image names that leave ``image_dir`` (absolute, ``..``),
    raise ValueError. UTF-8 (BOM allowed) and UTF-16/32 with a BOM are read.
    """
    who = "load_mpii_json"
    p = os.fspath(path)
    data = _read_json(p, who)
    if not isinstance(data, list):
        raise ValueError(f"{who}: {p!r}: expected a JSON list of records, got {type(data).__name__}")
    out = []
    for k, rec in enumerate(data):
        if not isinstance(rec, dict) or not {"image", "center", "scale"} <= rec.keys():
            raise ValueError(f"{who}: {p!r}: record {k} lacks 'image', 'center' or 'scale'")
        try:
            c = np.asarray(rec["center"], np.float64).reshape(2)
            s = float(rec["scale"])
            pts = np.asarray(rec.get("joints", np.zeros((16, 2))), np.float64)
            vis = np.asarray(rec.get("joints_vis", np.zeros(16)), np.float64).reshape(-1)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{who}: {p!r}: record {k} has non-numeric center/scale/joints ({e})") from None
        if pts.shape != (16, 2) or vis.shape != (16,):
            raise ValueError(f"{who}: {p!r}: record {k}: expected joints (16, 2) and joints_vis (16,), "
                             f"got {pts.shape} and {vis.shape}")
        if "joints" not in rec:
            vis = np.zeros(16)  # no coordinates: nothing can be visible
        used = pts[vis > 0]
        if not (_valid_person(c[0], c[1], s) and np.all(np.isfinite(used)) and np.all(np.abs(used) <= _F32_MAX)):
            continue
        pts = np.where(np.isfinite(pts) & (np.abs(pts) <= _F32_MAX), pts, -1.0)
        cc, ss = _mpii_crop(c, s)
        out.append(Record(points=(pts - 1.0).astype(np.float32), visible=(vis > 0).astype(np.float32),
                          head_size=np.float32(np.nan), center=cc, scale=ss,
                          mpii_center=(c - 1.0).astype(np.float32), mpii_scale=np.float32(s),
                          image_name=str(rec["image"]),
                          image_path=_image_path(image_dir, str(rec["image"]), who)))
    return out


def load_lsp(joints_mat, image_dir=None, lsp_flag_means_occluded: bool = True) -> list[Record]:
    """Read LSP (``joints`` 3 x 14 x N) or LSP-extended (14 x 3 x N, detected by the shape) and map
    the 14 joints to MPII-16 with ``tinybin.skeletons.lsp_to_mpii`` (pelvis = mean of the hips,
    thorax = mean of the shoulders there).

    The third row/column is an occlusion flag whose sense differs: for LSP we follow bearpaw/CPM,
    which use ``1 - flag`` (a stored 1 means occluded; ``lsp_flag_means_occluded=False`` reads it
    as visible instead); for LSPET a stored 1 means visible. It is returned as ``is_visible``.
    ``visible`` (annotated) is 1 for every joint except those with non-finite coordinates or
    x <= 0 and y <= 0 in the 1-based file (unlabelled).

    Record keys: points (16, 2) float32 0-based, visible, is_visible, center/scale from the padded
    joint box (``center_scale_from_points``, padding 1.25; LSP has no person box), head_size NaN,
    image_name (``im0001.jpg`` / ``im00001.jpg``), image_path (when ``image_dir`` is given), index.
    """
    who = "load_lsp"
    p = os.fspath(joints_mat)
    m = _loadmat(p, who, squeeze=False)
    if "joints" not in m:
        raise ValueError(f"{who}: {p!r} has no 'joints' array (keys: {sorted(k for k in m if not k.startswith('__'))})")
    J = np.asarray(m["joints"])
    if J.ndim == 2:
        J = J[..., None]
    if not np.issubdtype(J.dtype, np.number) or J.ndim != 3:
        raise ValueError(f"{who}: {p!r}: 'joints' must be a numeric 3-D array, got {J.dtype} {J.shape}")
    J = J.astype(np.float64)
    if J.shape[:2] == (3, 14):                                  # LSP
        xy, flag, fmt = J[:2].transpose(2, 1, 0), J[2].T, "im{:04d}.jpg"
        isv = 1.0 - flag if lsp_flag_means_occluded else flag
    elif J.shape[:2] == (14, 3):                                # LSP-extended
        xy, flag, fmt = J[:, :2].transpose(2, 0, 1), J[:, 2].T, "im{:05d}.jpg"
        isv = flag
    else:
        raise ValueError(f"{who}: {p!r}: 'joints' has shape {J.shape}; expected 3 x 14 x N (LSP) "
                         "or 14 x 3 x N (LSPET)")
    ann = np.all(np.isfinite(xy), -1) & ~np.all(xy <= 0, -1)
    xy = np.where(np.isfinite(xy), xy, 0.0) - 1.0
    pts16, vis16 = lsp_to_mpii(xy, ann)
    _, isv16 = lsp_to_mpii(xy, (isv > 0.5) & ann)
    out = []
    for n in range(xy.shape[0]):
        name = fmt.format(n + 1)
        try:
            c, s = center_scale_from_points(pts16[n], vis16[n], padding=1.25)
        except ValueError:
            raise ValueError(f"{who}: {p!r}: person {n + 1} has no annotated joints") from None
        out.append(Record(points=pts16[n].astype(np.float32), visible=vis16[n].astype(np.float32),
                          is_visible=isv16[n].astype(np.float32), center=np.asarray(c, np.float32),
                          scale=np.float32(s), head_size=np.float32(np.nan), image_name=name,
                          image_path=_image_path(image_dir, name, who), index=n))
    return out


def load_aflw2000(folder_or_files) -> list[Record]:
    """Read AFLW2000-3D annotations: one ``.mat`` per image with ``pt3d_68`` (3 x 68: x, y in
    1-based image pixels, z) and ``Pose_Para`` (1 x 7: pitch, yaw, roll in radians, tx, ty, tz,
    scale). ``folder_or_files``: a folder (every ``*.mat`` in it, sorted) or a list of paths.

    Record keys: points = pt3d_68[:2].T - 1 (68, 2) float32; pt3d (68, 3) (x, y 0-based, z as
    stored); visible (68,) ones (AFLW2000-3D annotates occluded points too); yaw, pitch, roll
    float32 degrees (as stored, not re-signed); center/scale (face box rule); image_path (the
    ``.jpg`` of the same stem when present, else None); name. Malformed files (unreadable,
    missing keys, wrong shapes, non-finite values) raise ValueError naming the file.
    """
    who = "load_aflw2000"
    if isinstance(folder_or_files, (str, os.PathLike)):
        root = os.fspath(folder_or_files)
        if not os.path.isdir(root):
            raise ValueError(f"{who}: {root!r} is not a directory (pass a folder or a list of .mat files)")
        files = sorted(os.path.join(root, f) for f in os.listdir(root) if f.lower().endswith(".mat"))
        if not files:
            raise ValueError(f"{who}: no .mat files in {root!r}")
    else:
        files = [os.fspath(f) for f in folder_or_files]
    out = []
    for f in files:
        m = _loadmat(f, who, squeeze=False)
        for key in ("pt3d_68", "Pose_Para"):
            if key not in m:
                raise ValueError(f"{who}: {f!r} has no {key!r} (keys: {sorted(k for k in m if not k.startswith('__'))})")
        P = np.asarray(m["pt3d_68"])
        pose = np.asarray(m["Pose_Para"]).ravel()
        if not np.issubdtype(P.dtype, np.number) or P.shape != (3, 68):
            raise ValueError(f"{who}: {f!r}: pt3d_68 must be numeric 3 x 68, got {P.dtype} {P.shape}")
        if not np.issubdtype(pose.dtype, np.number) or pose.size < 3:
            raise ValueError(f"{who}: {f!r}: Pose_Para must hold at least (pitch, yaw, roll), got {pose.shape}")
        P = P.astype(np.float64)
        if not (np.all(np.isfinite(P)) and np.all(np.isfinite(pose[:3]))):
            raise ValueError(f"{who}: {f!r}: non-finite values in pt3d_68 or Pose_Para")
        pts = (P[:2].T - 1.0).astype(np.float32)
        pt3d = P.T.copy()
        pt3d[:, :2] -= 1.0
        pitch, yaw, roll = np.degrees(pose[:3].astype(np.float64))
        stem = os.path.splitext(f)[0]
        img = next((stem + e for e in _IMAGE_EXTS if os.path.isfile(stem + e)), None)
        c, s = _face_center_scale(pts)
        out.append(Record(points=pts, pt3d=pt3d.astype(np.float32), visible=np.ones(68, np.float32),
                          yaw=np.float32(yaw), pitch=np.float32(pitch), roll=np.float32(roll), center=c, scale=s,
                          image_path=img, name=os.path.basename(stem)))
    return out


class RecordDataset:
    """Loader records as a dataset of fixed-size crops, with the synthetic sets' interface.

    ``ds[i]``: the record cropped with ``crop_transform(center, scale, resolution)``: image
    (R, R, 3), points in crop coordinates, visible (annotated and inside the crop), head_size scaled
    with the crop, center/scale of the crop (the crop's own frame), mask if the record has one, M.
    ``batch(indices, augment=False, rng=None)`` crops with ``tinybin.transforms.augment`` from the
    full image when augment=True.
    """

    def __init__(self, records: Sequence[dict], resolution: int = 64, flip_perm=None, kind: str = "pose"):
        self._kind = get_kind(kind, "RecordDataset: kind")
        self.records, self.resolution, self.kind = list(records), int(resolution), kind
        self._perm = flip_perm

    def __len__(self) -> int:
        return len(self.records)

    @property
    def flip_perm(self) -> np.ndarray:
        if self._perm is not None:
            return np.asarray(self._perm)
        return self._kind.flip_perm

    def _crop(self, rec, rng):
        R = self.resolution
        kw = AUGMENT if rng is not None else NO_AUGMENT
        out = _augment(rec["image"], rec["points"], np.asarray(rec["visible"]) > 0, rec["center"],
                       float(rec["scale"]), R, rng if rng is not None else np.random.default_rng(0),
                       self.flip_perm, mask=rec.get("mask"), **kw)
        M = out["M"]
        k = math.sqrt(abs(np.linalg.det(M[:, :2])))
        s = dict(image=out["image"], points=out["points"].astype(np.float32),
                 visible=(out["visible"] & out["in_crop"]).astype(np.float32),
                 center=np.full(2, (R - 1) / 2, np.float32), scale=np.float32(R / 200.0), M=M.astype(np.float32))
        if "head_size" in rec:
            s["head_size"] = np.float32(rec["head_size"] * k)
        if out["mask"] is not None:
            s["mask"] = out["mask"]
        return s

    def __getitem__(self, i: int) -> dict:
        return self._crop(self.records[i], None)

    def batch(self, indices: Iterable[int], augment: bool = False, rng: np.random.Generator | None = None) -> dict:
        indices = list(indices)
        if not indices:
            raise ValueError("RecordDataset.batch: no indices (an empty batch)")
        if augment and rng is None:
            raise ValueError("RecordDataset.batch: augment=True needs an explicit rng (np.random.Generator), got None")
        return _stack([self._crop(self.records[i], rng if augment else None) for i in indices])
