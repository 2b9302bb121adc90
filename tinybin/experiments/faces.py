"""The face and segmentation reports: the layouts of the paper's Table 9 (NME per yaw bin on
AFLW2000-3D) and Table 12 (300W segmentation), with the downscaled meaning of the NME thresholds."""
from __future__ import annotations


import numpy as np

from .definitions import PAPER_TABLE12, PAPER_TABLE9, RESULTS, get, make_data
from .reports import _mean_std, claim_verdict, load_results, paired_difference

# ---- faces: Table 9 and Table 12 layouts ---------------------------------------------------------

FACE_ALPHA = 0.07            # the paper's / FAN's CED range and failure threshold on AFLW2000-3D (box NME)
PAPER_RESOLUTION = 256       # the paper's input crops


def face_cell_nme(resolution: int, stride: int = 4) -> float:
    """One heatmap cell in NME % (box normalisation) at crop side `resolution`: 100 * stride /
    (BOX_FRACTION * R), with BOX_FRACTION = 0.475 the face box's side over the crop's
    (`tinybin.data.face.BOX_FRACTION`; see `face_matched_alpha`). 13.2% at R = 64, 3.3% at 256."""
    from ..data.face import BOX_FRACTION
    return 100.0 * stride / (BOX_FRACTION * float(resolution))


def face_matched_alpha(resolution: int = 64, alpha: float = FACE_ALPHA) -> float:
    """The NME threshold whose tolerance in heatmap cells equals ``alpha``'s at the paper's 256 px.

    NME divides by the gt box sqrt(w h), so it is scale-free as a formula; but the network sees
    the face through a stride-4 heatmap. Both the paper's crops (FAN: side = 200 (w + h) / 190 of
    the landmark box) and ours (``SyntheticFace``: (w + h) / 2 = 0.475 R, the same rule) put the
    box at the same fraction of the crop, so one heatmap cell is ``4 / (0.475 R)`` of the box:
    3.3% NME at R = 256, 13% at R = 64. An error of c cells is NME = c * 4 / (0.475 R); equal
    tolerance in cells means ``alpha * 256 / R`` (0.28 at R = 64 for alpha = 0.07).
    """
    return float(alpha) * PAPER_RESOLUTION / float(resolution)


def face_errors(result: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(per-image NME as plain ratios (M,), yaw in degrees (M,)) of one face result; None where the
    result does not hold them (``metrics.nme_per_image`` / top-level ``nme_per_image``, ``metrics.yaw``)."""
    m = result.get("metrics", {})
    e = m.get("nme_per_image", result.get("nme_per_image"))
    y = m.get("yaw", result.get("yaw"))
    e = None if e is None else np.asarray(e, np.float64)
    y = None if y is None else np.asarray(y, np.float64)
    if e is not None and y is not None and e.shape != y.shape:
        raise ValueError(f"face_errors: {len(e)} errors but {len(y)} yaw angles in {result.get('row')}")
    return e, y


FACE_BINS = ("[0,30]", "(30,60]", "(60,90]")


def face_scores(result: dict, alpha: float = FACE_ALPHA, matched_alpha: float | None = None) -> dict:
    """NME % per |yaw| bin and mean of the bin means (Table 9's "Mean", 3DDFA's protocol), AUC and
    failure rate (%) at ``alpha`` and at the matched threshold, recomputed from the stored per-image
    NME and yaw. Empty dict when the result holds no per-image errors."""
    from .. import metrics as M
    e, y = face_errors(result)
    if e is None:
        return {}
    res = result.get("data", {}).get("resolution") or 64
    ma = face_matched_alpha(res, alpha) if matched_alpha is None else matched_alpha
    out = {"all": float(np.mean(e) * 100), "auc": M.auc(e, alpha) * 100, "fr": M.failure_rate(e, alpha) * 100,
           "auc_matched": M.auc(e, ma) * 100, "fr_matched": M.failure_rate(e, ma) * 100}
    if y is not None:
        by = M.nme_by_yaw(e, y)
        out.update({b: by[b] * 100 for b in FACE_BINS})
        out["mean"] = by["mean"] * 100
        out["counts"] = by["counts"]
    return out


def nme_floor(resolution: int = 64, stride: int = 4, sigma: float = 1.0, n: int = 300, seed: int = 0,
              kind: str = "face_yaw90") -> dict:
    """The NME of a perfect network: decode the exact Gaussian targets (what training regresses)
    of ``n`` synthetic faces with ``tinybin.heatmaps.decode`` (argmax + quarter-cell step) and
    compare with the true points. What is left is the quantisation of the stride-``stride`` map.

    Uses the train split of seed ``seed`` (ground truth only; nothing is chosen from it).
    Returns dict(all, [0,30], (30,60], (60,90], mean (%), cells: mean point error in heatmap cells,
    per_image (n,) ratios, resolution, stride).
    """
    from .. import heatmaps as hm
    from .. import metrics as M
    (ds,) = make_data(kind, seed=seed, n_train=n, resolution=resolution, splits=("train",))
    b = ds.batch(np.arange(n))
    side = resolution // stride
    maps, _ = hm.render(hm.image_to_heatmap(b["points"], stride), (side, side), sigma)
    pts, _ = hm.decode(maps)
    pred = hm.heatmap_to_image(pts, stride)
    e = M.nme(pred, b["points"], norm="box")
    by = M.nme_by_yaw(e, b["yaw"])
    cells = float(np.mean(np.linalg.norm(pred - b["points"], axis=-1)) / stride)
    return {"all": float(e.mean() * 100), **{k: by[k] * 100 for k in FACE_BINS}, "mean": by["mean"] * 100,
            "cells": cells, "per_image": e, "resolution": resolution, "stride": stride}


def face_summary(results: dict[str, list[dict]] | None = None, root: str = RESULTS) -> dict:
    """Everything the Table 9 report prints, as numbers: per row the seeds' ``face_scores`` and
    mean ± std of each; paired differences (binary HPM - binary bottleneck, real HPM - binary HPM)
    per bin, mean, AUC and failure rate; and the two claims' verdicts. ``results``: {row: [result
    dicts]} (default: ``load_results("face", root)``)."""
    exp = get("face")
    results = load_results("face", root) if results is None else results
    keys = (*FACE_BINS, "mean", "all", "auc", "fr", "auc_matched", "fr_matched")
    rows, per_seed = [], {}
    for row in exp.rows:
        sc = {r["seed"]: face_scores(r) for r in results.get(row.name, [])}
        sc = {k: v for k, v in sc.items() if v}
        per_seed[row.name] = sc
        rows.append(dict(row=row.name, label=row.label, n=len(sc), paper=PAPER_TABLE9.get(row.name),
                         scores={k: _mean_std([v[k] for v in sc.values() if k in v]) for k in keys}))
    pairs = {}
    for label, a, b in (("binary HPM - binary bottleneck", "face_hpm_binary", "face_bottleneck_binary"),
                        ("real HPM - binary HPM", "face_hpm_real", "face_hpm_binary")):
        pairs[label] = {k: paired_difference({s: v[k] for s, v in per_seed[a].items() if k in v},
                                             {s: v[k] for s, v in per_seed[b].items() if k in v}) for k in keys}
    d = pairs["binary HPM - binary bottleneck"]
    hb, bb = per_seed["face_hpm_binary"], per_seed["face_bottleneck_binary"]
    shared = [s for s in hb if s in bb and "(60,90]" in hb[s] and "(60,90]" in bb[s]]
    large_vs_small = paired_difference({s: hb[s]["(60,90]"] - bb[s]["(60,90]"] for s in shared},
                                       {s: hb[s]["[0,30]"] - bb[s]["[0,30]"] for s in shared})
    claims = [
        dict(claim="binary HPM beats binary bottleneck (mean NME lower)", diff=d["mean"],
             verdict=claim_verdict(d["mean"], -1)),
        dict(claim="... most on large yaw: (HPM - bottleneck) at (60,90] below that at [0,30]",
             diff=large_vs_small, verdict=claim_verdict(large_vs_small, -1)),
    ]
    res = next((r.get("data", {}).get("resolution") for rs in results.values() for r in rs), None) or 64
    return dict(rows=rows, pairs=pairs, claims=claims, per_seed=per_seed, resolution=res,
                matched_alpha=face_matched_alpha(res))


def _fmt2(st: dict, nd: int = 2) -> str:
    return "–" if not st["n"] else f"{st['mean']:.{nd}f} ± {st['std']:.{nd}f}"


def _fmt_d2(d: dict | None, nd: int = 2) -> str:
    if not d or not d["n"]:
        return "–"
    if d["half"] is None:
        return f"{d['mean']:+.{nd}f} (1)"
    return f"{d['mean']:+.{nd}f} [{d['lo']:+.{nd}f}, {d['hi']:+.{nd}f}] ({d['n']})"


def face_report(root: str = RESULTS, results: dict | None = None, floor: dict | None = None) -> str:
    """Table 9's layout (NME % per |yaw| bin and mean, ours mean ± std over seeds, the paper's
    "Ours" row beside), AUC and failure rate at 0.07 and at the matched threshold, the NME floor of
    the heatmap quantisation, and the paired differences with 95% CIs and the claims' verdicts.
    ``floor``: a ``nme_floor`` dict (computed when not given)."""
    exp = get("face")
    sm = face_summary(results, root)
    R, ma = sm["resolution"], sm["matched_alpha"]
    if floor is None or floor.get("resolution") != R:     # the floor at the results' resolution
        floor = nme_floor(R)
    k = R / PAPER_RESOLUTION
    lines = [f"### {exp.source}: {exp.title}", "",
             f"NME in % of sqrt(w h) of the gt box, all 68 points; Mean = mean of the three bin means (3DDFA's "
             f"protocol). Ours: SyntheticFace at R = {R}, stride 4, mean ± std over seeds. AUC and FR in %, at "
             f"{FACE_ALPHA:g} (the paper's range) and at {ma:.2f} (the same tolerance in heatmap cells as "
             f"{FACE_ALPHA:g} at 256 px). One heatmap cell is {face_cell_nme(R):.1f}% NME here, "
             f"{face_cell_nme(PAPER_RESOLUTION):.1f}% at 256 px: multiply our NME by {k:.2f} to compare "
             f"errors in cells with the paper's.", "",
             "| network | [0,30] | (30,60] | (60,90] | Mean | Mean x R/256 | AUC@0.07 | FR@0.07 | "
             f"AUC@{ma:.2f} | FR@{ma:.2f} | seeds |", "|" + "---|" * 11]
    for r in sm["rows"]:
        sc = r["scores"]
        if not r["n"]:
            lines.append(f"| {r['label']} | not run yet |" + " |" * 8 + " 0 |")
            continue
        m = sc["mean"]
        scaled = "–" if not m["n"] else f"{m['mean'] * k:.2f}"
        lines.append(f"| {r['label']} | " + " | ".join(_fmt2(sc[b]) for b in (*FACE_BINS, "mean")) +
                     f" | {scaled} | " + " | ".join(_fmt2(sc[x], 1) for x in ("auc", "fr", "auc_matched", "fr_matched"))
                     + f" | {r['n']} |")
    for name, vals in PAPER_TABLE9.items():
        lines.append(f"| paper: \"Ours\" ({exp.row(name).label}, AFLW2000-3D, 256 px) | " +
                     " | ".join(f"{vals[b]:.2f}" for b in (*FACE_BINS, "mean")) + f" | {vals['mean']:.2f} | – | – | – | – | – |")
    lines.append(f"| NME floor: decoded true Gaussian targets (R = {floor['resolution']}, stride "
                 f"{floor['stride']}; {floor['cells']:.2f} cells per point) | " +
                 " | ".join(f"{floor[b]:.2f}" for b in (*FACE_BINS, "mean")) +
                 f" | {floor['mean'] * k:.2f} | – | – | – | – | – |")
    lines += ["", "Paired differences over shared seeds, mean [95% CI] (pairs); NME: negative = first row better.",
              "", "| difference | [0,30] | (30,60] | (60,90] | Mean | AUC@0.07 | FR@0.07 |", "|" + "---|" * 7]
    for label, d in sm["pairs"].items():
        lines.append(f"| {label} | " + " | ".join(_fmt_d2(d[b]) for b in (*FACE_BINS, "mean")) + " | " +
                     " | ".join(_fmt_d2(d[x], 1) for x in ("auc", "fr")) + " |")
    lines += ["", "| paper claim | ours: Δ NME %, mean [95% CI] (pairs) | verdict |", "|---|---|---|"]
    for c in sm["claims"]:
        lines.append(f"| {c['claim']} | {_fmt_d2(c['diff'])} | {c['verdict']} |")
    return "\n".join(lines)


SEG_SCORES = ("pixel_acc", "mean_acc", "mean_iu")


def seg_scores(result: dict) -> dict:
    """Pixel accuracy, mean accuracy, mean IU (%) and per-class IU (%, list) of one table12 result."""
    m = result["metrics"]
    out = {k: float(m[k]) * 100 for k in SEG_SCORES}
    out["iu"] = [float("nan") if v is None else float(v) * 100 for v in m.get("iu", [])]
    return out


def table12_summary(results: dict[str, list[dict]] | None = None, root: str = RESULTS) -> dict:
    """Per row mean ± std of the three scores and the per-class IU means; paired differences
    (binary HPM - binary bottleneck, binary HPM - real bottleneck, binary bottleneck - real bottleneck)
    and the verdicts of the two claims (binary HPM beats binary bottleneck; binary HPM almost matches
    the real network: its gap to real is less than half the binary bottleneck's, paired per seed)."""
    exp = get("table12")
    results = load_results("table12", root) if results is None else results
    per_seed = {row.name: {r["seed"]: seg_scores(r) for r in results.get(row.name, [])} for row in exp.rows}
    rows = []
    for row in exp.rows:
        sc = per_seed[row.name]
        ius = np.array([v["iu"] for v in sc.values()], np.float64) if sc else np.zeros((0, 0))
        rows.append(dict(row=row.name, label=row.label, n=len(sc), paper=PAPER_TABLE12.get(row.name),
                         scores={k: _mean_std([v[k] for v in sc.values()]) for k in SEG_SCORES},
                         iu=np.nanmean(ius, 0).tolist() if len(ius) else None))

    def by(name, key):
        return {s: v[key] for s, v in per_seed[name].items()}
    pairs = {}
    for label, a, b in (("binary HPM - binary bottleneck", "seg_hpm_binary", "seg_bottleneck_binary"),
                        ("binary HPM - real bottleneck", "seg_hpm_binary", "seg_bottleneck_real"),
                        ("binary bottleneck - real bottleneck", "seg_bottleneck_binary", "seg_bottleneck_real")):
        pairs[label] = {k: paired_difference(by(a, k), by(b, k)) for k in SEG_SCORES}
    real, hpm, bn = by("seg_bottleneck_real", "mean_iu"), by("seg_hpm_binary", "mean_iu"), by(
        "seg_bottleneck_binary", "mean_iu")
    shared = sorted(set(real) & set(hpm) & set(bn))
    half_gap = paired_difference({s: real[s] - hpm[s] for s in shared},
                                 {s: 0.5 * (real[s] - bn[s]) for s in shared})
    d = pairs["binary HPM - binary bottleneck"]["mean_iu"]
    claims = [dict(claim="binary HPM beats binary bottleneck (mean IU higher)", diff=d,
                   verdict=claim_verdict(d, +1)),
              dict(claim="binary HPM almost matches real: (real - HPM) < (real - binary bottleneck) / 2",
                   diff=half_gap, verdict=claim_verdict(half_gap, -1))]
    return dict(rows=rows, pairs=pairs, claims=claims, per_seed=per_seed)


def table12_report(root: str = RESULTS, results: dict | None = None) -> str:
    """Table 12's layout (pixel accuracy, mean accuracy, mean IU; ours mean ± std over seeds beside
    the paper's 300W numbers), per-class IU, paired differences with 95% CIs and the verdicts."""
    from ..skeletons import FACE_PARTS
    exp = get("table12")
    sm = table12_summary(results, root)
    lines = [f"### {exp.source}: {exp.title}", "",
             "Ours: SyntheticFaceParts (masks from the 68 points), labels at the heatmap resolution "
             "(stride 4), confusion accumulated over the test set as FCN does; mean ± std over seeds, %. "
             "Paper: 300W Indoor & Outdoor at 256 px.", "",
             "| network | pixel acc. | mean acc. | mean IU | paper: pixel acc. | mean acc. | mean IU | seeds |",
             "|" + "---|" * 8]
    for r in sm["rows"]:
        p = r["paper"] or {}
        ours = " | ".join(_fmt2(r["scores"][k]) for k in SEG_SCORES) if r["n"] else "not run yet | – | –"
        lines.append(f"| {r['label']} | {ours} | " + " | ".join(f"{p[k]:.2f}" if k in p else "–" for k in SEG_SCORES)
                     + f" | {r['n']} |")
    lines += ["", "Per-class IU %, mean over seeds:", "",
              "| network | " + " | ".join(FACE_PARTS) + " |", "|---|" + "---|" * len(FACE_PARTS)]
    for r in sm["rows"]:
        cells = ["–"] * len(FACE_PARTS) if r["iu"] is None else [f"{v:.1f}" for v in r["iu"]]
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences over shared seeds, mean [95% CI] (pairs), points of %; paper's Δ beside:", "",
              "| difference | pixel acc. | mean acc. | mean IU | paper Δ mean IU |", "|---|---|---|---|---|"]
    names = {"binary HPM": "seg_hpm_binary", "binary bottleneck": "seg_bottleneck_binary",
             "real bottleneck": "seg_bottleneck_real"}
    for label, d in sm["pairs"].items():
        a, b = (names[x] for x in label.split(" - "))
        pd_ = PAPER_TABLE12[a]["mean_iu"] - PAPER_TABLE12[b]["mean_iu"]
        lines.append(f"| {label} | " + " | ".join(_fmt_d2(d[k]) for k in SEG_SCORES) + f" | {pd_:+.2f} |")
    lines += ["", "| paper claim | ours: Δ mean IU, mean [95% CI] (pairs) | verdict |", "|---|---|---|"]
    for c in sm["claims"]:
        lines.append(f"| {c['claim']} | {_fmt_d2(c['diff'])} | {c['verdict']} |")
    return "\n".join(lines)


# Experiments whose report has its own layout (the paper's table), instead of the generic one.
REPORT_LAYOUTS = {"face": face_report, "table12": table12_report}


