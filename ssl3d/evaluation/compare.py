"""``ssl3d compare``: rank evaluated runs (seeds of one recipe) by the label-free validation score.

Self-supervised runs of one recipe differ a lot by seed, and a few fail (a pose collapse, or poses
spread but mostly wrong). Without 3D or pose labels, the silhouette IoU that ``ssl3d evaluate``
stores (each validation cloud projected at its predicted view against the input mask) tells which
seed to keep: over 15 plain 6,000-model chair runs, keeping the highest IoU of three averaged a
test Chamfer of 4.22 against 4.90 for one run (benchmarks/seed_pick.py). Most of that gain is
avoiding the failed runs, which it puts last; among healthy runs it picks only a little better
than chance. The score depends on the silhouette projection and on the validation images, so runs
are compared only when those agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ssl3d.evaluation.evaluate import fits_its_masks, scored_this_checkpoint
from ssl3d.training.checkpoint import find_checkpoint, load_checkpoint, stopped_path
from ssl3d.training.config import TrainConfig

SCORE_FIELDS = ("category", "image_size", "n_points", "sigma2", "silhouette_form", "affinity_form",
                "affinity_empty_cost")
"""Checkpoint fields the label-free score depends on: the category (stored beside the config),
the silhouette projection (a tanh_sum silhouette adds up the points' kernels, so the point count
counts) and the forward affinity."""
NOT_RECIPE = ("seed", "init", "pose_labels", "device", "cuda_graph", "log_every", "image_every",
              "checkpoint_every", "snapshot_every", "progress", "stop_on_collapse")
"""Config fields that may differ between seeds of one recipe (paths, logging, the device)."""


@dataclass(frozen=True)
class RunScore:
    """One run's stored evaluation: its label-free score and, for reference, its metrics."""

    run: str
    steps: int
    iou: float
    affinity_fwd: float
    chamfer: float | None
    emd: float | None
    pose_acc: float | None


def run_score(run: str | Path, key: str = "test") -> tuple[RunScore, dict, str]:
    """The stored ``key`` entry of a run's metrics.json as a :class:`RunScore`, with the run's
    config (a dict) and the data folder it was scored on. Raises ValueError or FileNotFoundError
    naming the run when there is nothing to compare."""
    ckpt_path = find_checkpoint(run)
    ckpt = load_checkpoint(ckpt_path)
    # Fields a checkpoint predates count with their defaults, which that run used.
    cfg = {**TrainConfig().to_dict(), **ckpt["config"], "category": ckpt.get("category", "")}
    metrics_path = ckpt_path.parent / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"{run}: no {metrics_path.name} beside {ckpt_path.name}; run "
                                f"`ssl3d evaluate {run}` first")
    entry = json.loads(metrics_path.read_text()).get(cfg["category"], {}).get(key)
    if entry is None:
        raise ValueError(f"{run}: {metrics_path} has no entry {cfg['category']}/{key}; run "
                         f"`ssl3d evaluate {run}` (with the flags that write that key) first")
    if not scored_this_checkpoint(entry, ckpt_path, ckpt["step"]):
        raise ValueError(f"{run}: the {key} entry of {metrics_path} scored {entry['checkpoint']} at "
                         f"step {entry['steps']}, not {ckpt_path} at step {ckpt['step']}; evaluate "
                         f"it again")
    lf = entry.get("label_free") or {}
    if "val_silhouette_iou" not in lf:
        raise ValueError(f"{run}: the {key} entry of {metrics_path} has no label-free score (it "
                         f"is made only when the evaluation fits its rotation on the validation "
                         f"split, without --refine, --rotation-from or --pose-select mask); run "
                         f"`ssl3d evaluate {run}`")
    return (RunScore(str(run), entry["steps"], lf["val_silhouette_iou"], lf["val_affinity_fwd"],
                     entry.get("chamfer_x1000"), entry.get("emd_x1000"), entry.get("pose_acc_30")),
            cfg, entry["data"])


def split_stopped(runs: list[str | Path]) -> tuple[list[str | Path], list[str]]:
    """The runs that have a final checkpoint or are checkpoint files, and a note for each run
    folder that has none because training stopped it on a pose collapse (``--stop-on-collapse``):
    a seed sweep's lost seeds, which have nothing to compare."""
    kept, notes = [], []
    for run in runs:
        stopped = [p for p in (stopped_path(run, s) for s in ("cc", "nn")) if p.is_file()]
        try:
            find_checkpoint(run)
        except FileNotFoundError:
            if stopped:
                notes.append(f"{run}: {stopped[0].read_text().strip()}")
                continue
        kept.append(run)  # a run that is neither fails in compare_runs, naming what it lacks
    return kept, notes


def compare_runs(runs: list[str | Path], key: str = "test") -> tuple[list[RunScore], list[str]]:
    """The runs' stored scores, best label-free silhouette IoU first, and the config fields other
    than :data:`NOT_RECIPE` in which the runs differ (none for seeds of one recipe). Raises
    ValueError when the runs disagree on a field in :data:`SCORE_FIELDS` or on the data they were
    scored on."""
    if len(runs) < 2:
        raise ValueError(f"compare needs at least two runs, got {len(runs)}")
    if fits_its_masks(key):
        raise ValueError(f"key {key}: compare ranks runs by the label-free score, which an "
                         f"evaluation with --refine or --pose-select mask does not make (those fit "
                         f"the very masks it reads); give a key such as test")
    checkpoints: dict[Path, str | Path] = {}
    for run in runs:
        ckpt = find_checkpoint(run).resolve()
        if ckpt in checkpoints:
            raise ValueError(f"{checkpoints[ckpt]} and {run} are the same run ({ckpt})")
        checkpoints[ckpt] = run
    scored = [run_score(r, key) for r in runs]
    first_run, (_, first_cfg, first_data) = runs[0], scored[0]
    for run, (_, cfg, data) in zip(runs[1:], scored[1:]):
        for field in SCORE_FIELDS:
            if cfg[field] != first_cfg[field]:
                raise ValueError(f"{run} has {field} = {cfg[field]!r} but {first_run} has "
                                 f"{first_cfg[field]!r}: the label-free score compares only runs "
                                 f"of the same {', '.join(SCORE_FIELDS)}")
        if Path(data).resolve() != Path(first_data).resolve():
            raise ValueError(f"{run} was scored on {data} but {first_run} on {first_data}: the "
                             f"label-free score compares runs on the same validation images")
    differ = sorted(f for f in first_cfg if f not in NOT_RECIPE
                    and any(cfg.get(f) != first_cfg[f] for _, cfg, _ in scored[1:]))
    return sorted((s for s, _, _ in scored), key=lambda s: -s.iou), differ


def comparison_table(scores: list[RunScore]) -> str:
    """A Markdown table of :func:`compare_runs`' result, the pick first."""
    cell = lambda v, fmt: "-" if v is None else format(v, fmt)  # noqa: E731
    lines = ["| run | steps | label-free IoU (val) | forward affinity (val) | Chamfer x1000 | "
             "EMD x1000 | pose acc @30 |", "|---|---|---|---|---|---|---|"]
    for i, s in enumerate(scores):
        lines.append(f"| {s.run}{' (pick)' if i == 0 else ''} | {s.steps} | {s.iou:.4f} | "
                     f"{s.affinity_fwd:.4f} | {cell(s.chamfer, '.2f')} | {cell(s.emd, '.2f')} | "
                     f"{cell(None if s.pose_acc is None else 100 * s.pose_acc, '.1f')}"
                     f"{'' if s.pose_acc is None else '%'} |")
    return "\n".join(lines) + "\n"
