"""Reports computed from the result files alone: mean +- std per row, paired differences with
95% t-intervals, validation curves, the calibration rule, per-part PCKh, and the verdict of a
paper claim from a paired difference."""
from __future__ import annotations

import json
import math
import os

import numpy as np

from .definitions import RESULTS, Experiment, copy_of, get, source

# ---- report ------------------------------------------------------------------------------------

def load_results(name: str, root: str = RESULTS) -> dict[str, list[dict]]:
    """{row name: [result dicts sorted by seed]} from the JSON files of experiment `name`; a
    `same_as` row whose copy of a seed is not written yet reads its source's file."""
    exp = get(name)
    folder = os.path.join(root, exp.name)
    out: dict[str, list[dict]] = {r.name: [] for r in exp.rows}
    for fn in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if not fn.endswith(".json") or "__seed" not in fn:
            continue
        with open(os.path.join(folder, fn)) as fh:
            r = json.load(fh)
        if r.get("row") in out:
            out[r["row"]].append(r)
    for row in exp.rows:  # a same_as row reads its source's results for the seeds not copied yet
        if row.same_as:
            src_exp, src = source(exp, row)
            have = {r["seed"] for r in out[row.name]}
            out[row.name] += [copy_of(exp, row, r) for r in load_results(src_exp.name, root)[src.name]
                              if r["seed"] not in have]
    for v in out.values():
        v.sort(key=lambda r: r["seed"])
    return out


def _distances(result: dict) -> np.ndarray | None:
    d = result.get("distances")
    if d is None:
        return None
    return np.array([[np.nan if v is None else v for v in row] for row in d], np.float64)


def score_of(result: dict, metric: str, threshold: float | None = None) -> float | None:
    """One result's score. metric: pckh | pckh_matched | nme | mean_iu, or "pckh@" with
    `threshold` (recomputed from the stored distances). None where the result cannot give it
    (results of the first protocol have no distances and no pckh_matched)."""
    from .. import metrics as M
    m = result["metrics"]
    if metric == "mean_iu":
        return float(m["mean_iu"] * 100 if m["mean_iu"] <= 1 else m["mean_iu"])
    if metric in ("pckh", "nme"):
        return float(m[metric])
    if metric == "pckh_matched" and m.get("pckh_matched") is not None:
        return float(m["pckh_matched"])
    d = _distances(result)
    if d is None:
        return None
    if metric == "pckh_matched":
        res = result.get("data", {}).get("resolution") or result.get("net_config", {}).get("resolution", 64)
        threshold = M.matched_threshold(res)
    elif metric != "pckh@" or threshold is None:
        raise ValueError(f"score_of: unknown metric {metric!r}")
    return M.pckh_from_distances(d, threshold)["mean"]


def _mean_std(vals: list[float]) -> dict:
    v = np.array(vals, np.float64)
    return dict(n=len(v), mean=float(v.mean()) if len(v) else None,
                std=float(v.std(ddof=1)) if len(v) > 1 else (0.0 if len(v) else None))


def paired_difference(a: dict[int, float], b: dict[int, float], level: float = 0.95) -> dict:
    """Mean and t-interval of a[s] - b[s] over the seeds s present in both (None scores skipped).

    half = t_{(1+level)/2, n-1} * sd / sqrt(n) with sd the sample std (ddof 1) of the differences;
    n < 2 gives half = None. Returns dict(n, mean, sd, half, lo, hi, seeds); `sd` (None below 2
    pairs) is what `seeds_for_power` needs to say how many seeds would resolve a difference.
    """
    from scipy import stats
    seeds = sorted(s for s in set(a) & set(b) if a[s] is not None and b[s] is not None)
    d = np.array([a[s] - b[s] for s in seeds], np.float64)
    n = len(d)
    if n == 0:
        return dict(n=0, mean=None, sd=None, half=None, lo=None, hi=None, seeds=[])
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else None
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)) if n > 1 else None
    return dict(n=n, mean=mean, sd=sd, half=half, lo=None if half is None else mean - half,
                hi=None if half is None else mean + half, seeds=seeds)


def _metric_keys(exp: Experiment, threshold: float | None) -> list[str]:
    if exp.metric != "pckh":
        return [exp.metric]
    return ["pckh", "pckh_matched"] + (["pckh@"] if threshold is not None else [])


def _by_seed(results: list[dict], key: str, threshold: float | None) -> dict[int, float | None]:
    return {r["seed"]: score_of(r, key, threshold) for r in results}


def summarize(name: str, root: str = RESULTS, threshold: float | None = None) -> list[dict]:
    """One dict per row: label, n seeds, mean, std (ddof=1 when n > 1) of the experiment's metric,
    params, minutes, paper values; `scores` {metric: mean/std/n} and `diff` {metric: paired
    difference against the experiment's reference row} for pckh and pckh_matched (pose)."""
    exp = get(name)
    res = load_results(name, root)
    keys = _metric_keys(exp, threshold)
    ref = res.get(exp.reference, []) if exp.reference else []
    rows = []
    for row in exp.rows:
        rs = res[row.name]
        scores, diff = {}, {}
        for k in keys:
            by = _by_seed(rs, k, threshold)
            scores[k] = _mean_std([v for v in by.values() if v is not None])
            if exp.reference and row.name != exp.reference:
                diff[k] = paired_difference(by, _by_seed(ref, k, threshold))
        main = scores[exp.metric]
        vals = [v for v in _by_seed(rs, exp.metric, None).values()]
        rows.append(dict(row=row.name, label=row.label, n=main["n"], mean=main["mean"], std=main["std"],
                         values=vals, scores=scores, diff=diff,
                         params=rs[0]["params"] if rs else None,
                         paper_scale_params=rs[0].get("paper_scale_params") if rs else None,
                         minutes=float(np.mean([r["train_time_s"] for r in rs]) / 60) if rs else None,
                         machines=sorted({_machine(r) for r in rs}),
                         matched_threshold=next((r["metrics"].get("matched_threshold") for r in rs
                                                 if r["metrics"].get("matched_threshold") is not None), None),
                         paper=row.paper, paper_params=row.paper_params))
    return rows


def _machine(result: dict) -> str:
    """The CPU a result was trained on (`runner.machine_info`), or "unrecorded" for older files."""
    return (result.get("machine") or {}).get("cpu") or "unrecorded"


def _minutes_note(summ: list[dict]) -> list[str]:
    """Report line under a table whose training minutes come from more than one machine (or from
    runs that predate the record): then the column does not compare rows."""
    machines = sorted({m for s in summ for m in s.get("machines", [])})
    if len(machines) <= 1 and machines != ["unrecorded"]:
        return []
    known = [m for m in machines if m != "unrecorded"]
    what = [f"{len(known)} machine{'s' * (len(known) > 1)} ({', '.join(known)})"] if known else []
    what += ["runs that do not record their CPU"] if "unrecorded" in machines else []
    return ["", f"train min/run: wall-clock minutes from {' and '.join(what)}, measured while other runs "
                "shared the machine; they compare rows trained on one machine only (`machine` and "
                "`step_time_s` in each result file)."]


def _fmt_ms(s: dict) -> str:
    return "–" if not s["n"] else f"{s['mean']:.1f} ± {s['std']:.1f} ({s['n']})"


def _fmt_diff(d: dict | None, digits: int = 1) -> str:
    if not d or not d["n"]:
        return "–"
    if d["half"] is None:
        return f"{d['mean']:+.{digits}f} (1)"
    return f"{d['mean']:+.{digits}f} [{d['lo']:+.{digits}f}, {d['hi']:+.{digits}f}] ({d['n']})"


def report(name: str, root: str = RESULTS, threshold: float | None = None) -> str:
    """Markdown table of experiment `name` from its result files.

    Per row: mean ± std over seeds and, against the reference row, the paired difference over the
    seeds both rows have: mean [95% t-interval] (pairs), at PCKh@0.5 and at pckh_matched (pose),
    and at PCKh@`threshold` recomputed from the stored distances when given. "–": not available
    (e.g. results of the first protocol have no pckh_matched).
    """
    from .faces import REPORT_LAYOUTS  # the face and segmentation layouts build on this module
    if name in REPORT_LAYOUTS:
        return REPORT_LAYOUTS[name](root)
    exp = get(name)
    summ = summarize(name, root, threshold)
    keys = _metric_keys(exp, threshold)
    ref_label = exp.row(exp.reference).label if exp.reference else None
    mt = next((s["matched_threshold"] for s in summ if s["matched_threshold"] is not None), None)
    names = {"pckh": "PCKh@0.5 %", "nme": "NME % (lower is better)", "mean_iu": "mean IU %",
             "pckh_matched": "PCKh matched" + (f" (@{mt:.2f}) %" if mt else " %"),
             "pckh@": f"PCKh@{threshold:g} %" if threshold is not None else ""}
    head = ["row"]
    for k in keys:
        head.append(f"{names[k]}, mean ± std (seeds)")
        if exp.reference:
            head.append(f"{names[k].split(' %')[0]}: Δ vs ref, mean [95% CI] (pairs)")
    head += ["paper"] + (["paper Δ vs ref"] if exp.reference else []) + [
        "params (ours, downscaled)", "params at paper scale (ours / paper)", "train min/run"]
    lines = [f"### {exp.source}: {exp.title}", ""]
    if exp.reference:
        lines += [f"Reference row: {ref_label}. Δ = row - reference, paired over shared seeds.", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    paper_ref = exp.row(exp.reference).paper if exp.reference else None
    for s in summ:
        cells = [s["label"]]
        for k in keys:
            cells.append("not run" if not s["n"] and k == exp.metric else _fmt_ms(s["scores"][k]))
            if exp.reference:
                cells.append("ref" if s["row"] == exp.reference else _fmt_diff(s["diff"].get(k)))
        cells.append("–" if s["paper"] is None else f"{s['paper']}")
        if exp.reference:
            cells.append("ref" if s["row"] == exp.reference else
                         ("–" if s["paper"] is None or paper_ref is None else f"{s['paper'] - paper_ref:+.1f}"))
        if not s["n"]:
            cells += ["–", f"– / {s['paper_params'] or '–'}", "–"]
        else:
            pp = "–" if s["paper_scale_params"] is None else f"{s['paper_scale_params'] / 1e6:.2f}M"
            cells += [f"{s['params']:,}", f"{pp} / {s['paper_params'] or '–'}", f"{s['minutes']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += _minutes_note(summ)
    if exp.comparisons:
        lines += ["", "| comparison | " + " | ".join(f"{names[k].split(' %')[0]}: Δ, mean [95% CI] (pairs)"
                                                  for k in keys) + " |", "|---|" + "---|" * len(keys)]
        for label, (ea, ra), (eb, rb) in exp.comparisons:
            a = load_results(ea, root).get(ra, [])
            b = load_results(eb, root).get(rb, [])
            cells = [_fmt_diff(paired_difference(_by_seed(a, k, threshold), _by_seed(b, k, threshold)))
                     for k in keys]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    res = load_results(name, root)
    lines += _per_stack_lines(exp, res)
    lines += _generalisation_lines(exp, res)
    if exp.timing:
        lines += _timing_lines(exp, res)
    lines += REPORT_SECTIONS.get(name, lambda *a: [])(exp, summ, keys, root)
    return "\n".join(lines)


def _per_stack_lines(exp: Experiment, res: dict[str, list[dict]]) -> list[str]:
    """Report section: the accuracy of every stack's output of the stacked rows (mean ± std over
    seeds) and its paired difference against stack 1 of the same network."""
    keys = ("pckh", "pckh_matched")
    out = []
    for row in exp.rows:
        rs = [r for r in res[row.name] if r.get("metrics_per_stack")]
        if not rs:
            continue
        if not out:
            out = ["", "Per-stack accuracy (every stack's output of the same trained network; Δ vs its stack 1, "
                   "paired over seeds)", "",
                   "| row | stack | " + " | ".join(f"{k} %, mean ± std (seeds) | {k}: Δ vs stack 1 [95% CI]"
                                                  for k in keys) + " |", "|---|---|" + "---|---|" * len(keys)]
        n_st = max(len(r["metrics_per_stack"]) for r in rs)
        for k in range(n_st):
            cells = [row.label, str(k + 1)]
            for key in keys:
                by = {r["seed"]: r["metrics_per_stack"][k][key] for r in rs if k < len(r["metrics_per_stack"])}
                first = {r["seed"]: r["metrics_per_stack"][0][key] for r in rs}
                cells.append(_fmt_ms(_mean_std(list(by.values()))))
                cells.append("ref" if k == 0 else _fmt_diff(paired_difference(by, first)))
            out.append("| " + " | ".join(cells) + " |")
    return out


def _generalisation_lines(exp: Experiment, res: dict[str, list[dict]], key: str = "pckh") -> list[str]:
    """Report section for results that carry `generalisation` (runner.generalisation_probe): per
    row, PCKh on the training images, the test images and the augmented test images (mean over
    seeds), the gaps train - test and augmented - test within each run (mean [95% CI] over seeds),
    and, against the reference row, the paired difference on each of the three sets."""
    probed = {row.name: {r["seed"]: r for r in res.get(row.name, []) if r.get("generalisation")} for row in exp.rows}
    if not any(probed.values()):
        return []
    sets = {"train": lambda r: r["generalisation"]["train"][key], "test": lambda r: r["metrics"][key],
            "test_augmented": lambda r: r["generalisation"]["test_augmented"][key]}
    ref = probed.get(exp.reference, {})
    out = ["", f"Generalisation probe ({key} %; training images as stored, test images, test images under the "
           "training augmentation; gaps within each run, Δ vs the reference paired over seeds)", "",
           "| row | train | test | augmented test | train - test | augmented - test | Δ train | Δ test | Δ augmented |",
           "|---|---|---|---|---|---|---|---|---|"]
    for row in exp.rows:
        runs = probed[row.name]
        if not runs:
            continue
        by = {name: {s: f(r) for s, r in runs.items()} for name, f in sets.items()}
        cells = [row.label] + [_fmt_ms(_mean_std(list(by[n].values()))) for n in sets]
        cells += [_fmt_diff(paired_difference(by["train"], by["test"])),  # gaps within each run
                  _fmt_diff(paired_difference(by["test_augmented"], by["test"]))]
        for name, f in sets.items():
            cells.append("ref" if row.name == exp.reference else
                         _fmt_diff(paired_difference(by[name], {s: f(r) for s, r in ref.items()})))
        out.append("| " + " | ".join(cells) + " |")
    return out


def _timing_lines(exp: Experiment, res: dict[str, list[dict]]) -> list[str]:
    """Report section: each row's forward time (median over its runs of `forward_ms`, batch of 16
    test crops, eval mode) and the ratio to the reference row paired over seeds. A ratio pairs two
    runs only if both recorded the same CPU (`machine`): a time from another machine, or from a run
    that did not record its machine, says nothing about the row. The runs may also have shared the
    machine with other jobs: notebook 07 measures the ratio in one process, interleaved."""
    def by_seed(rows):
        return {r["seed"]: (r["forward_ms"], (r.get("machine") or {}).get("cpu")) for r in rows if r.get("forward_ms")}
    ref = by_seed(res.get(exp.reference, [])) if exp.reference else {}
    out = ["", "Forward time (eval mode, batch 16; median over runs; ratio to the reference paired over seeds "
           "measured on the same CPU)", "", "| row | forward ms | ratio to reference, mean (pairs) |", "|---|---|---|"]
    for row in exp.rows:
        t = by_seed(res[row.name])
        ms = f"{np.median([v[0] for v in t.values()]):.1f}" if t else "–"
        ratios = [ms_ / ref[s][0] for s, (ms_, cpu) in t.items() if s in ref and cpu and ref[s][1] == cpu]
        rat = "ref" if row.name == exp.reference else (f"{np.mean(ratios):.3f} ({len(ratios)})" if ratios
                                                       else "– (no pair on one CPU)")
        out.append(f"| {row.label} | {ms} | {rat} |")
    return out


def curves_report(name: str, root: str = RESULTS) -> str:
    """Validation curves of a val experiment (calibration, pilot): per row and checkpoint step, the
    mean over seeds of pckh / pckh_matched, and the paired difference against the reference row."""
    exp = get(name)
    res = load_results(name, root)
    lines = [f"### {exp.title} (validation split)", ""]
    keys = ("pckh", "pckh_matched")
    ref = {r["seed"]: r for r in res.get(exp.reference, [])} if exp.reference else {}
    for row in exp.rows:
        rs = [r for r in res[row.name] if r.get("val_curve")]
        if not rs:
            continue
        steps = rs[0]["val_curve"]["step"]
        head = ["step", *keys] + ([f"Δ {k} vs ref" for k in keys] if exp.reference and row.name != exp.reference
                                  else [])
        lines += [f"{row.label} ({len(rs)} seeds)", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for i, st in enumerate(steps):
            cells = [str(st)]
            for k in keys:
                v = [r["val_curve"][k][i] for r in rs if k in r["val_curve"] and i < len(r["val_curve"][k])]
                cells.append(f"{np.mean(v):.1f}" if v else "–")
            if exp.reference and row.name != exp.reference:
                for k in keys:
                    a = {r["seed"]: r["val_curve"][k][i] for r in rs if i < len(r["val_curve"].get(k, []))}
                    b = {s: r["val_curve"][k][i] for s, r in ref.items()
                         if r.get("val_curve") and i < len(r["val_curve"].get(k, []))}
                    cells.append(_fmt_diff(paired_difference(a, b)))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


# The selection rule of the calibration sweep, fixed before its results existed: for each network
# kind (binary, real), the cell with the highest validation PCKh@0.5 averaged over seeds and over
# the last two checkpoints (steps 1750 and 2000 of 2000: less noisy than the last point alone);
# PCKh@0.5 rather than pckh_matched because the matched threshold (2.06 head sizes at R = 64) is
# near saturation on validation and separates the cells less. Ties within 0.5 points go to the
# smaller learning rate, then to no warm-up, then to clipping (the paper's reference, XNOR-Net,
# clips). A kind is chosen only when every cell of it has a result.
SELECT_LAST = 2
SELECT_TIE = 0.5


def calibration_choice(root: str = RESULTS) -> dict[str, dict]:
    """{"binary": {...}, "real": {...}}: per network kind the chosen row and its training settings
    (lr, lr_end, warm-up, clipping), its selection score, and every cell's score; a kind whose
    cells are not all done maps to {"missing": [row names]}. See the rule above."""
    exp = get("calibration")
    res = load_results("calibration", root)
    out: dict[str, dict] = {}
    for kind in ("binary", "real"):
        rows = [r for r in exp.rows if bool(r.net.get("binary", True)) == (kind == "binary")]
        missing = [r.name for r in rows if not res[r.name]]
        if missing:
            out[kind] = {"missing": missing}
            continue
        scores = {}
        for r in rows:
            per_seed = [float(np.mean(x["val_curve"]["pckh"][-SELECT_LAST:])) for x in res[r.name]]
            scores[r.name] = float(np.mean(per_seed))
        best = max(scores.values())

        def order(r):
            t = r.train
            return (t["lr"], bool(t.get("warmup_steps") or t.get("warmup_fraction")), t.get("clip_latent") is None)
        near = sorted((r for r in rows if scores[r.name] >= best - SELECT_TIE), key=order)
        pick = near[0]
        settings = {k: v for k, v in pick.train.items() if k in ("lr", "lr_end", "warmup_steps", "warmup_fraction",
                                                                   "clip_latent")}
        out[kind] = {"row": pick.name, "label": pick.label, "score": scores[pick.name], "best": best,
                     "settings": settings, "scores": scores}
    return out


def calibration_report(root: str = RESULTS) -> str:
    """The selection rule applied to results/calibration, as text."""
    lines = ["### Recipe chosen on the validation split", "",
             f"Rule: highest validation PCKh@0.5, mean of the last {SELECT_LAST} checkpoints; ties within "
             f"{SELECT_TIE} points go to the smaller lr, then no warm-up, then clipping.", ""]
    for kind, c in calibration_choice(root).items():
        if "missing" in c:
            lines.append(f"- {kind}: not chosen yet, {len(c['missing'])} cells to run")
        else:
            lines.append(f"- {kind}: {c['label']} (score {c['score']:.1f}, best cell {c['best']:.1f}); "
                         f"settings {json.dumps(c['settings'])}")
    return "\n".join(lines)


# The budget rule of the pilot, fixed before its curves existed (the pilot's rows were written and
# the runs started; two checkpoints at step 1000 had been seen). At every validation checkpoint t
# of the 6,000-step pilot, each row's paired difference against the reference row (binary
# bottleneck) is averaged over the seeds; the budget is the smallest t >= BUDGET_MIN from which
# every row's difference stays within BUDGET_TOL PCKh@0.5 points of its value at the end of the
# pilot: the comparisons the tables make have stopped moving. Caveat: the pilot's lr schedule spans
# all 6,000 steps, so its step-t model has seen a higher lr than a t-step run ends with; a
# t-step run compresses the same schedule.
BUDGET_TOL = 2.0
BUDGET_MIN = 2000


def budget_choice(root: str = RESULTS, name: str = "pilot") -> dict:
    """{"steps": chosen budget or None, "diffs": {row: {step: mean paired difference}},
    "final_step": ..., "missing": [row names without results]}; the rule is in the comment above."""
    exp = get(name)
    res = load_results(name, root)
    missing = [r.name for r in exp.rows if not res[r.name]]
    out: dict = {"steps": None, "diffs": {}, "final_step": exp.steps, "missing": missing,
                 "tol": BUDGET_TOL, "min": BUDGET_MIN}
    if missing:
        return out
    ref = {r["seed"]: r["val_curve"] for r in res[exp.reference]}
    for row in exp.rows:
        if row.name == exp.reference:
            continue
        per_step: dict[int, list[float]] = {}
        for x in res[row.name]:
            b = ref.get(x["seed"])
            if b is None:
                continue
            for t, a_v in zip(x["val_curve"]["step"], x["val_curve"]["pckh"]):
                if t in b["step"]:
                    per_step.setdefault(t, []).append(a_v - b["pckh"][b["step"].index(t)])
        out["diffs"][row.name] = {t: float(np.mean(v)) for t, v in sorted(per_step.items())}
    steps = sorted(set.intersection(*(set(d) for d in out["diffs"].values())))
    if not steps:
        return out
    final = steps[-1]
    out["final_step"] = final
    for t in (t for t in steps if t >= BUDGET_MIN):
        later = [u for u in steps if u >= t]
        if all(abs(d[u] - d[final]) <= BUDGET_TOL for d in out["diffs"].values() for u in later):
            out["steps"] = t
            break
    return out


def budget_report(root: str = RESULTS) -> str:
    c = budget_choice(root)
    lines = ["### Budget chosen on the validation split", "",
             f"Rule: the smallest checkpoint >= {BUDGET_MIN} steps from which every row's mean paired "
             f"difference against the reference stays within {BUDGET_TOL} PCKh@0.5 points of its value at "
             f"the end of the pilot.", ""]
    if c["missing"]:
        return "\n".join(lines + [f"- not chosen yet: {len(c['missing'])} rows without results"])
    steps = sorted(next(iter(c["diffs"].values())))
    lines += ["| step | " + " | ".join(f"Δ {r}" for r in c["diffs"]) + " |", "|---|" + "---|" * len(c["diffs"])]
    for t in steps:
        lines.append(f"| {t} | " + " | ".join(f"{d[t]:+.1f}" if t in d else "–" for d in c["diffs"].values()) + " |")
    lines += ["", f"- budget: {c['steps']} steps" if c["steps"] else "- budget: none of the checkpoints qualifies"]
    return "\n".join(lines)


PAPER_TABLE1_PARTS = {  # paper Table 1, PCKh per part on MPII validation
    "bottleneck_real": {"Head": 94.9, "Shoulder": 85.8, "Elbow": 76.9, "Wrist": 71.3, "Hip": 78.1,
                        "Knee": 70.1, "Ankle": 63.2},
    "bottleneck_binary": {"Head": 90.5, "Shoulder": 79.6, "Elbow": 63.0, "Wrist": 57.2, "Hip": 71.1,
                          "Knee": 58.2, "Ankle": 53.4},
}


def parts_report(name: str, root: str = RESULTS) -> str:
    """Per-part PCKh (mean over seeds) of a pose experiment, with the paper's Table 1 values
    where the paper gives them ("ours / paper")."""
    exp = get(name)
    if exp.metric != "pckh":
        raise ValueError(f"parts_report: {name} is not a pose experiment")
    res = load_results(name, root)
    parts = ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle"]
    lines = ["| part | " + " | ".join(r.label for r in exp.rows) + " |",
             "|---|" + "---|" * len(exp.rows)]
    for part in parts:
        cells = []
        for row in exp.rows:
            vals = [r["metrics"]["pckh_parts"][part] for r in res[row.name]]
            ours = f"{np.mean(vals):.1f}" if vals else "–"
            paper = PAPER_TABLE1_PARTS.get(row.name, {}).get(part)
            cells.append(ours if paper is None else f"{ours} / {paper}")
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


MIN_PAIRS = 3  # fewer seeds than the fewest any experiment of the protocol declares: no verdict


def claim_verdict(diff: dict | None, direction: int) -> str:
    """What a paired difference says about a claim of the paper.

    diff: `tinybin.experiments.paired_difference` output (n, mean, lo, hi: 95% CI of row - reference).
    direction: the sign the paper reports for row - reference (+1 or -1; 0: the paper gives no
    direction). Returns "agrees" (CI excludes 0 on the paper's side), "disagrees" (CI excludes 0 on
    the other side), "unresolved" (CI contains 0, or no direction), "not run" (no pairs) or
    "unresolved (n pairs)" below the protocol's minimum of `MIN_PAIRS` seeds: with 2 pairs the
    t-interval has one degree of freedom, and two differences that happen to coincide give a
    narrow interval that means nothing.
    """
    if direction not in (-1, 0, 1):
        raise ValueError(f"claim_verdict: direction must be -1, 0 or +1, got {direction!r}")
    if not diff or not diff.get("n"):
        return "not run"
    if diff["n"] < MIN_PAIRS or diff.get("lo") is None or diff.get("hi") is None:
        return f"unresolved ({diff['n']} pair{'s' if diff['n'] > 1 else ''})"
    side = 1 if diff["lo"] > 0 else (-1 if diff["hi"] < 0 else 0)
    if side == 0 or direction == 0:
        return "unresolved"
    return "agrees" if side == direction else "disagrees"


def paired_power(sd: float, delta: float, n: int, level: float = 0.95) -> float:
    """Probability that `n` paired seeds resolve a true difference `delta`: that the `level`
    t-interval of the paired differences (`paired_difference`) excludes 0 on delta's side, when the
    differences are normal with standard deviation `sd`.

    With T = mean / (s / sqrt(n)) non-central t (n - 1 degrees of freedom, non-centrality
    |delta| sqrt(n) / sd), the interval lies above 0 exactly when T > t_{(1+level)/2, n-1}.
    """
    from scipy import stats
    if not (sd > 0 and math.isfinite(sd)):
        raise ValueError(f"paired_power: sd must be positive and finite, got {sd!r}")
    if int(n) != n or n < 2:
        raise ValueError(f"paired_power: n must be an integer >= 2 (a t-interval needs 2 pairs), got {n!r}")
    n = int(n)
    crit = stats.t.ppf(0.5 + level / 2, n - 1)
    return float(stats.nct.sf(crit, n - 1, abs(delta) * math.sqrt(n) / sd))


def seeds_for_power(sd: float, delta: float, power: float = 0.8, level: float = 0.95,
                    most: int = 1000) -> int | None:
    """The fewest paired seeds n with `paired_power(sd, delta, n, level) >= power`; None if even
    `most` seeds fall short (or delta is 0).

    This puts a number on "unresolved at this power": with the spread of paired differences a row
    shows (`paired_difference(...)["sd"]`), how many seeds would resolve the paper's difference?
    For delta / sd = 1 it gives 10 seeds, for 0.5 it gives 34 (80% power, 95% interval).
    """
    if not 0 < power < 1:
        raise ValueError(f"seeds_for_power: power must be in (0, 1), got {power!r}")
    if delta == 0:
        return None
    if paired_power(sd, delta, most, level) < power:
        return None
    lo, hi = 1, most             # power grows with n: paired_power(hi) >= power, and lo is below any n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if paired_power(sd, delta, mid, level) >= power:
            hi = mid
        else:
            lo = mid
    return hi


def scale_verdict(base: dict | None, scaled: dict | None, shift: dict | None, paper: float | None) -> str:
    """Which way a paired difference moved with scale, seen from the paper's value.

    base, scaled: the difference at the base scale and at the larger one; shift: the paired change
    scaled - base (each a `paired_difference` dict); paper: the paper's value of the difference
    (None: the paper gives none). Returns "moves towards the paper's" (the change's 95% CI excludes
    0 on the paper's side of the base mean, and the scaled mean has not passed the paper's value),
    "overshoots the paper's" (the same, but the scaled mean lies beyond the paper's value, on the
    other side of it from the base mean: e.g. +8.5 -> +3.0 against the paper's +8.3), "moves away
    from the paper's" (CI excludes 0 on the other side), "no change resolved", "not run", or
    "unresolved" (no paper value or no base mean).
    """
    if not shift or not shift.get("n"):
        return "not run"
    if paper is None or not base or base.get("mean") is None:
        return "unresolved"
    towards = 1 if paper > base["mean"] else -1
    v = claim_verdict(shift, towards)
    if v == "agrees":
        past = scaled is not None and scaled.get("mean") is not None and (scaled["mean"] - paper) * towards > 0
        return "overshoots the paper's" if past else "moves towards the paper's"
    return {"disagrees": "moves away from the paper's", "unresolved": "no change resolved"}.get(v, v)


# ---- is the ranking still moving? ----------------------------------------------------------------

def loss_drift(results: dict[str, list[dict]], ref: str, window: float = 0.1) -> dict[str, dict]:
    """Whether a budget was long enough for a comparison, from the training losses alone.

    For each row other than `ref` and each seed both ran, d_s(t) = loss_row,s(t) - loss_ref,s(t)
    on the runs' `loss_curve` (the per-step training loss sampled 100 times; rows with the same
    seed see the same batches, so the difference is paired batch by batch). Negative d: the row
    fits its training data better than the reference.

    Returns {row: dict(steps, mean, last, before, drift)}: `mean` is d(t) averaged over seeds at
    each sampled step (`steps`); `last` and `before` are the per-seed means of d over the final
    `window` of training and the `window` before it, each as `paired_difference` against zero;
    `drift` = last - before, paired over seeds. A drift whose CI excludes zero says the difference
    was still changing when training stopped.
    """
    if not 0 < window <= 0.5:
        raise ValueError(f"loss_drift: window must be in (0, 0.5], got {window!r}")
    base = {r["seed"]: np.asarray(r["loss_curve"], np.float64) for r in results.get(ref, [])}
    out = {}
    for row, runs in results.items():
        if row == ref:
            continue
        curves = {}
        for r in runs:
            b = base.get(r["seed"])
            c = np.asarray(r["loss_curve"], np.float64)
            if b is not None and len(b) == len(c) and len(c) >= 4:
                curves[r["seed"]] = c - b
        if not curves:
            continue
        n = len(next(iter(curves.values())))
        k = max(1, int(round(window * n)))
        last = {s: float(d[-k:].mean()) for s, d in curves.items()}
        before = {s: float(d[-2 * k:-k].mean()) for s, d in curves.items()}
        zero = {s: 0.0 for s in curves}
        steps = int(runs[0]["train_config"]["steps"])
        out[row] = dict(steps=np.linspace(0, steps, n), mean=np.mean(list(curves.values()), axis=0),
                        last=paired_difference(last, zero), before=paired_difference(before, zero),
                        drift=paired_difference(last, before))
    return out


# ---- scale checks ------------------------------------------------------------------------------

# The comparisons the scale checks make (the protocol's check of scale): (label, row, reference
# row) as "experiment/row" at the base scale (F = 64, R = 64, D = 3) and in each scale experiment
# that has both rows. Rows share seeds across experiments (same seed, same data at the same R), so
# the change of a difference with scale is itself a paired quantity.
SCALE_COMPARISONS = (
    ("real - binary, bottleneck", "table1/bottleneck_real", "table1/bottleneck_binary",
     {"scale_width": ("bottleneck_real", "bottleneck"), "scale_resolution": ("bottleneck_real", "bottleneck")}),
    ("HPM - bottleneck (binary)", "table2/hpm", "table2/bottleneck",
     {"scale_width": ("hpm", "bottleneck"), "scale_resolution": ("hpm", "bottleneck")}),
    ("HPM 3/4 width - bottleneck (binary)", "table2/hpm_f192", "table2/bottleneck",
     {"scale_width": ("hpm_3q", "bottleneck")}),
    ("MS no 1x1 - bottleneck (binary)", "table2/multiscale_no1x1", "table2/bottleneck",
     {"scale_width": ("multiscale_no1x1", "bottleneck")}),
    ("HPM - MS no 1x1 (binary)", "table2/hpm", "table2/multiscale_no1x1",
     {"scale_width": ("hpm", "multiscale_no1x1")}),
)


def seed_scores(spec: str, key: str, root: str = RESULTS) -> dict[int, float | None]:
    """{seed: score at metric `key`} of the row `spec` = "experiment/row" (copies and aliases
    resolved as in `load_results`)."""
    name, row = spec.split("/")
    return _by_seed(load_results(name, root).get(row, []), key, None)


def _dict_difference(a: dict, b: dict) -> dict:
    """{seed: a[seed] - b[seed]} over the seeds where both are not None."""
    return {s: a[s] - b[s] for s in set(a) & set(b) if a[s] is not None and b[s] is not None}


def seed_difference(a: str, b: str, key: str, root: str = RESULTS) -> dict[int, float]:
    """{seed: score of row a - score of row b} at metric `key` over the seeds both have; a, b are
    "experiment/row". Rows of different experiments pair too: seed k is the same data and batches."""
    return _dict_difference(seed_scores(a, key, root), seed_scores(b, key, root))


def scale_check(root: str = RESULTS, keys=("pckh", "pckh_matched")) -> list[dict]:
    """The scale checks' comparisons: per comparison and scale experiment, the paired difference
    (row - reference, mean and 95% CI over seeds) at the base scale and at the larger scale, and
    the paired change of that difference with scale (larger - base, over the seeds both have).

    Returns [dict(label, scale, base={key: diff}, scaled={key: diff}, shift={key: diff})];
    entries whose scale experiment has no pairs yet have n = 0 in `scaled` and `shift`.
    `pckh_matched` is matched at each network's own resolution (`metrics.matched_threshold`:
    about 2.05 head sizes at R = 64, 1.03 at R = 128), so it asks the same precision in heatmap
    cells at both scales; PCKh@0.5 asks twice MPII's precision in cells at R = 128 and four times
    at R = 64, which by itself moves `pckh` differences between the scales.
    """
    out = []
    for label, row, ref, scaled in SCALE_COMPARISONS:
        for exp_name, (srow, sref) in scaled.items():
            e = dict(label=label, scale=exp_name, base={}, scaled={}, shift={})
            for k in keys:
                b = seed_difference(row, ref, k, root)
                s = seed_difference(f"{exp_name}/{srow}", f"{exp_name}/{sref}", k, root)
                e["base"][k] = paired_difference(b, {x: 0.0 for x in b})
                e["scaled"][k] = paired_difference(s, {x: 0.0 for x in s})
                e["shift"][k] = paired_difference(s, b)
            out.append(e)
    return out


def gap_closed(summ: list[dict], key: str, ceiling: str) -> dict[str, dict | None]:
    """Per row, the fraction of the real-binary gap it closes at metric `key`:

        closed = mean_s (row_s - ref_s) / mean_s (ceiling_s - ref_s)

    (paired differences against the reference row, `summarize`'s diff), with the 95% interval of
    the numerator divided by the same gap (the gap's own uncertainty is not propagated; it is
    printed beside). None where either difference is missing or the gap is not positive."""
    by = {s["row"]: s for s in summ}
    gap = by[ceiling]["diff"].get(key)
    out: dict[str, dict | None] = {}
    for s in summ:
        d = s["diff"].get(key)
        if not gap or not gap["n"] or gap["mean"] is None or gap["mean"] <= 0 or not d or not d["n"]:
            out[s["row"]] = None
            continue
        g = gap["mean"]
        out[s["row"]] = dict(mean=d["mean"] / g, lo=None if d["lo"] is None else d["lo"] / g,
                             hi=None if d["hi"] is None else d["hi"] / g, n=d["n"], gap=g)
    return out


def beyond_claims(summ: list[dict], results: dict[str, list[dict]], keys=("pckh", "pckh_matched")) -> list[dict]:
    """The claims of the `beyond` experiment, fixed with its protocol (notebook 10), each with its
    paired difference and verdict (`claim_verdict`, direction +1): every addition helps (row -
    baseline > 0); all together beats the rank-1 scale alone; a gap to the real HPM remains after
    all additions (real - all > 0). One more line per metric is marked post_hoc (no verdict of
    the protocol): all together against the single addition that scored best on this test split.

    Each: dict(claim, name, key, diff, verdict, post_hoc)."""
    srow = {s["row"]: s for s in summ}
    additions = [s["row"] for s in summ if s["diff"] and s["row"] != "real"]   # the reference has no diff

    def seeds_of(row, key):
        return {r["seed"]: score_of(r, key) for r in results.get(row, [])}

    def pair(a, b, key):
        return paired_difference(seeds_of(a, key), seeds_of(b, key))

    out = []
    for name in additions:
        for key in keys:
            d = srow[name]["diff"].get(key)
            out.append(dict(claim=f"{srow[name]['label']} helps", name=name, key=key, diff=d,
                            verdict=claim_verdict(d, +1), post_hoc=False))
    for key in keys:
        d = pair("all", "learned_rank1", key)
        out.append(dict(claim="all together beats the rank-1 scale alone", name="all - learned_rank1", key=key,
                        diff=d, verdict=claim_verdict(d, +1), post_hoc=False))
        d = pair("real", "all", key)
        out.append(dict(claim="a gap to the real HPM remains after all additions", name="real - all", key=key,
                        diff=d, verdict=claim_verdict(d, +1), post_hoc=False))
        singles = [n for n in additions if n != "all" and (srow[n]["diff"].get(key) or {}).get("n")]
        if singles and results.get("all"):
            top = max(singles, key=lambda n: srow[n]["diff"][key]["mean"])
            d = pair("all", top, key)
            out.append(dict(claim=f"(post hoc) all together beats the best single addition, {top}",
                            name=f"all - {top}", key=key, diff=d, verdict=claim_verdict(d, +1), post_hoc=True))
    return out


def _beyond_section(exp: Experiment, summ: list[dict], keys: list[str], root: str) -> list[str]:
    """Report section of `beyond`: the fraction of the real-binary gap each row closes."""
    lines = ["", f"Fraction of the real-binary gap closed, (row - {exp.reference}) / (real - {exp.reference}), "
             "paired over seeds; [95% CI of the numerator / mean gap]", "",
             "| row | " + " | ".join(f"{k}: gap closed" for k in keys) + " |", "|---|" + "---|" * len(keys)]
    closed = {k: gap_closed(summ, k, "real") for k in keys}
    for s in summ:
        cells = [s["label"]]
        for k in keys:
            c = closed[k].get(s["row"])
            if s["row"] == exp.reference:
                cells.append("0 (ref)")
            elif c is None:
                cells.append("–")
            elif c["lo"] is None:
                cells.append(f"{c['mean']:.2f} ({c['n']})")
            else:
                cells.append(f"{c['mean']:.2f} [{c['lo']:.2f}, {c['hi']:.2f}] ({c['n']}; gap {c['gap']:.1f} pts)")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The claims fixed before the runs (notebook 10), Δ paired over seeds, mean [95% CI] (pairs); "
              "verdicts from the intervals", ""]
    lines += format_beyond_claims(beyond_claims(summ, load_results(exp.name, root), keys))
    return lines


def format_beyond_claims(claims: list[dict]) -> list[str]:
    """`beyond_claims` as the lines of a markdown table: claim, metric, Δ mean [95% CI] (pairs),
    verdict (post-hoc lines get none: they were chosen after seeing the results)."""
    lines = ["| claim | metric | Δ, mean [95% CI] (pairs) | verdict |", "|---|---|---|---|"]
    for c in claims:
        verdict = "(no verdict: chosen after the results)" if c["post_hoc"] else c["verdict"]
        lines.append(f"| {c['claim']} | {c['key']} | {_fmt_diff(c['diff'])} | {verdict} |")
    return lines


def _scale_section(exp: Experiment, summ: list[dict], keys: list[str], root: str) -> list[str]:
    """Report section of the scale checks: each comparison at the base scale (Tables 1-2) and at
    this experiment's scale, and the paired change with scale."""
    entries = [e for e in scale_check(root, keys) if e["scale"] == exp.name]
    head = ["comparison"] + [c for k in keys for c in (f"{k}: F=64, R=64", f"{k}: here", f"{k}: change")]
    lines = ["", "The same differences at the base scale (Tables 1-2, same seeds) and here; change = here - base, "
             "paired over seeds; mean [95% CI] (pairs)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        lines.append("| " + " | ".join([e["label"]] + [_fmt_diff(e[part][k]) for k in keys
                                                        for part in ("base", "scaled", "shift")]) + " |")
    return lines


NOISE_LAYERS = ("first", "middle", "last")
NOISE_STATS = {"autocorr": "lag-1 autocorrelation (lower: noisier)",
               "high_freq": "high-frequency share (higher: noisier)"}


def feature_noise_by_seed(results: list[dict], layer: str, stat: str) -> dict[int, float]:
    """{seed: result["feature_noise"][layer][stat]} over the results that stored it."""
    out = {}
    for r in results:
        v = (r.get("feature_noise") or {}).get(layer, {}).get(stat)
        if v is not None:
            out[r["seed"]] = float(v)
    return out


def feature_noise_table(name: str, root: str = RESULTS) -> list[dict]:
    """Fig. 13's numbers of experiment `name`: one entry per (row, layer, stat) with the mean ± std
    over seeds (`ms`), the paired difference against the reference row (`diff`), and, for the
    "last" layer, the paired difference of that difference between the last and the first layer
    (`deepening`: does the gap to the reference grow towards the last layers?)."""
    exp = get(name)
    res = load_results(name, root)
    ref = res.get(exp.reference, []) if exp.reference else []
    out = []
    for row in exp.rows:
        for layer in NOISE_LAYERS:
            for stat in NOISE_STATS:
                v = feature_noise_by_seed(res[row.name], layer, stat)
                e = {"row": row.name, "label": row.label, "layer": layer, "stat": stat,
                     "ms": _mean_std(list(v.values())), "diff": None, "deepening": None}
                if ref and row.name != exp.reference:
                    gap = {lay: _dict_difference(feature_noise_by_seed(res[row.name], lay, stat),
                                                 feature_noise_by_seed(ref, lay, stat)) for lay in (layer, "first")}
                    e["diff"] = paired_difference(gap[layer], {k: 0.0 for k in gap[layer]})
                    if layer == "last":
                        e["deepening"] = paired_difference(gap["last"], gap["first"])
                out.append(e)
    return out


def _feature_section(exp: Experiment, summ: list[dict], keys: list[str], root: str) -> list[str]:
    """Report section of `fig13`: how smooth each row's feature maps are at the first, middle and
    last layer (`runner.feature_noise`), with paired differences against the reference row."""
    table = feature_noise_table(exp.name, root)
    if not any(e["ms"]["n"] for e in table):
        return []
    lines = ["", "Feature maps (16 test crops; mean over channels): " + "; ".join(NOISE_STATS.values())
             + f". Δ = row - {exp.reference}, paired over seeds; mean [95% CI] (pairs)", "",
             "| row | layer | " + " | ".join(f"{s}, mean ± std | {s}: Δ vs ref" for s in NOISE_STATS) + " |",
             "|---|---|" + "---|---|" * len(NOISE_STATS)]
    by = {(e["row"], e["layer"], e["stat"]): e for e in table}
    for row in exp.rows:
        for layer in NOISE_LAYERS:
            cells = [row.label, layer]
            for stat in NOISE_STATS:
                e = by[(row.name, layer, stat)]
                ms = e["ms"]
                cells.append("–" if not ms["n"] else f"{ms['mean']:.3f} ± {ms['std']:.3f} ({ms['n']})")
                cells.append("ref" if row.name == exp.reference else _fmt_diff(e["diff"], 3))
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Does the gap to {exp.reference} grow towards the last layer? (row - ref at the last layer) - "
              "(row - ref at the first), paired over seeds", "",
              "| row | " + " | ".join(NOISE_STATS) + " |", "|---|" + "---|" * len(NOISE_STATS)]
    for row in exp.rows:
        if row.name != exp.reference:
            cells = [_fmt_diff(by[(row.name, "last", s)]["deepening"], 3) for s in NOISE_STATS]
            lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    return lines


# Extra report sections after an experiment's table: name -> fn(exp, summary rows, metric keys, root).
REPORT_SECTIONS = {"beyond": _beyond_section, "scale_width": _scale_section, "scale_resolution": _scale_section,
                   "fig13": _feature_section}


