"""The paper's ablations as named experiments on downscaled synthetic data, a resumable parallel
runner, and a report that sets our numbers beside the paper's with paired confidence intervals.

    python -m tinybin.experiments list
    python -m tinybin.experiments run table2 --seeds 5 --jobs 2       # trains what is not done yet
    python -m tinybin.experiments run table2 --scheduler tcp://host:8786   # on a Dask cluster
    python -m tinybin.experiments calibrate --seeds 1 --jobs 2        # validation split only
    python -m tinybin.experiments report table2                       # means, paired differences

Every (experiment, row, seed) trains once; its result is one JSON file
`results/<experiment>/<row>__seed<k>.json` under the current directory (or `--results DIR`) (metrics, per-sample distances, parameter counts at the
downscaled and at the paper's scale, training time, configs, seed). Files are written atomically
by the process that runs the experiment (worker processes and Dask workers return the dict), and
finished runs are skipped, so an interrupted `run` resumes where it stopped. The report is
computed from the JSON files alone, so it reproduces exactly from the committed `results/`.

Protocol (README, "The experimental protocol"). All rows use `HourGlass.downscaled` (R = 64, F = 64, D = 3) on the
synthetic sets with a fixed finite training set (so augmentation matters, as on MPII) and RMSprop
with the sigmoid loss. Pose results report PCKh@0.5 (the paper's formula at our scale) and
`pckh_matched`, PCKh at the threshold whose tolerance in heatmap cells equals MPII's at 256 px
(`tinybin.metrics.matched_threshold`, 2.06 head sizes at R = 64), with flip testing; every test
sample's normalised per-joint distances are stored (`distances`), so any threshold can be
recomputed (`report --threshold T`). Faces store the per-image NME and yaw (`metrics.nme_per_image`,
`metrics.yaw`); `report face` and `report table12` print the layouts of the paper's Tables 9 and 12.

Splits. Each seed k generates three disjoint synthetic splits (train, val, test; distinct sample
seeds). The tables are evaluated on test. Everything chosen from data -- learning rate, warm-up,
latent clipping, the number of steps -- is chosen by the `calibration` and `pilot` experiments,
which build only the train and val splits (`make_data(..., splits=("train", "val"))`): they cannot
read the test split.

Recipe. `RECIPE` holds the optimiser settings for binary and real networks; a recipe file
(`--recipe file.json`: {"steps": ..., "binary": {...}, "real": {...}}) or the CLI flags (--lr,
--steps, --warmup, --clip-latent, ...) override it. Precedence, low to high: `BUDGET`, the
experiment's own steps / eval interval, the recipe (its top level, then its binary / real part),
the row's training overrides, the CLI flags. Whenever a layer sets `lr` without `lr_end`, the
schedule ends at lr / 5 (four drops, as the paper's 2.5e-4 -> 5e-5). Stacked rows trained
sequentially give `stage_fraction` and `finetune_fraction` of the merged `steps`, which stays the
row's total budget (each stage, then the joint fine-tuning, gets that fraction of it).

Scores are PCKh in % (pose), NME in % of the box size (faces; lower is better) and mean IU in %
(segmentation). The paper's numbers are MPII / AFLW2000-3D / 300W at full scale: we compare
orderings and gaps, not absolute values.

Layout: `definitions` (budget, recipe, rows, the registry, the data splits), `runner` (one run,
many runs), `reports` (tables, paired differences, the calibration rule, verdicts), `faces`
(Tables 9 and 12), `cli` (the command line). The names below are importable from
`tinybin.experiments` itself.
"""

from .definitions import (  # noqa: F401
    RESULTS, BUDGET, DATA, LR_DROP, RECIPE, Row, Experiment, EXPERIMENTS, PAPER_TABLE9,
    PAPER_TABLE12, SPLITS, make_data, synthetic_head_fraction, source, copy_of, get, merge_layers, recommended,
)
from .runner import (  # noqa: F401
    result_path, load_recipe, train_settings, run_one, CKPT_EVERY, teacher_path, is_teacher,
    ensure_teacher, partial_dir, code_version, forward_ms, forward_times, TIMING_FIELDS,
    result_files, write_result, default_jobs, run, plan, AugmentedView, generalisation_probe,
)
from .reports import (  # noqa: F401
    load_results, score_of, _mean_std, paired_difference, summarize, _fmt_diff, report,
    curves_report, SELECT_LAST, SELECT_TIE, calibration_choice, calibration_report, budget_choice, budget_report,
    BUDGET_TOL, BUDGET_MIN,
    PAPER_TABLE1_PARTS, parts_report, MIN_PAIRS, claim_verdict, paired_power, seeds_for_power, scale_verdict,
    gap_closed, beyond_claims, format_beyond_claims,
    REPORT_SECTIONS,
    SCALE_COMPARISONS, seed_scores, seed_difference, scale_check, loss_drift,
    NOISE_LAYERS, NOISE_STATS, feature_noise_by_seed, feature_noise_table,
)
from .faces import (  # noqa: F401
    FACE_ALPHA, PAPER_RESOLUTION, face_cell_nme, face_matched_alpha, face_errors, FACE_BINS, face_scores,
    nme_floor, face_summary, _fmt2, _fmt_d2, face_report, SEG_SCORES, seg_scores, table12_summary,
    table12_report, REPORT_LAYOUTS,
)
from .cli import (  # noqa: F401
    main,
)
