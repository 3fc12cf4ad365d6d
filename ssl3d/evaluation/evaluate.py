"""``ssl3d evaluate``: predict a split, align on validation, score, and write the tables.

Writes into the run folder: ``predictions_<key>.npz`` (clouds, colours, viewpoints, model ids;
key = the split, e.g. ``test``, with the tag, refinement and pose-selection marks of its
metrics.json entry), ``metrics.json`` (per category and split: chamfer_x1000, emd_x1000, pose_acc_30,
pose_median_deg, n, the fitted rotation, the same for the mean-shape baseline (with the folder whose
training split it was fitted to, and how many of the scored models that split holds), and ``label_free``:
the validation split's silhouette fit, which needs no 3D or pose labels, for comparing runs of
the same projection settings; empty with ``rotation_from`` (no validation split predicted) and
with refinement or mask-selected poses, which fit the very masks the score reads) and
``results.md`` (a Markdown table).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ssl3d.data.dataset import ViewSet, load_split, read_split, resolve_paths, save_npz_atomic
from ssl3d.evaluation import metrics as M
from ssl3d.training.checkpoint import find_checkpoint, load_checkpoint, models_from_checkpoint


@torch.no_grad()
def predict(recon, pose, images: torch.Tensor, batch_size: int = 256,
            masks: torch.Tensor | None = None, cfg=None):
    """Run both networks. images: (M, 3, S, S). Returns xyz (M, N, 3), rgb (M, N, 3),
    viewpoints (M, 2), on the CPU. With ``masks`` (M, S, S) and a pose net of several
    hypotheses, the viewpoint is the hypothesis whose projection best explains image and mask
    (as in training; needs the training config ``cfg``) instead of the selector's choice."""
    from ssl3d.training.losses import select_by_reprojection

    recon.eval()
    pose.eval()
    dev = next(recon.parameters()).device
    xyz, rgb, vps = [], [], []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(dev)
        p, c = recon(x)
        if masks is not None and pose.cfg.pose_hypotheses > 1:
            hyp, _ = pose(x, all_hypotheses=True)
            v = select_by_reprojection(p.float(), c.float(), hyp.float(), x,
                                       masks[i:i + batch_size].to(dev), cfg)
        else:
            v = pose(x)
        xyz.append(p.float().cpu())
        rgb.append(c.float().cpu())
        vps.append(v.float().cpu())
    return torch.cat(xyz), torch.cat(rgb), torch.cat(vps)


@torch.no_grad()
def silhouette_fit(xyz: torch.Tensor, rgb: torch.Tensor, viewpoints: torch.Tensor,
                   masks: torch.Tensor, cfg, batch_size: int = 256) -> dict:
    """How well each cloud, projected at its predicted view, covers its input's mask: a score
    that needs no 3D or pose labels, to compare runs (seeds) on data without ground truth.
    xyz, rgb: (M, N, 3); viewpoints: (M, 2); masks: (M, S, S); ``cfg`` the training config (its
    projection and affinity forms). Returns per image, on the CPU: ``iou`` (M,) of the projected
    silhouette and the mask, both thresholded at 0.5, and ``affinity_fwd`` (M,), the training's
    forward affinity (projected silhouette outside the mask; 64-px px^2 for the intended form).
    Both depend on the projection settings in ``cfg``: compare runs that share them. Over 12 chair
    runs of several recipes at 6,000 models (3.79-8.00 Chamfer x1000) their validation means
    ranked the runs' test Chamfer with Spearman -0.59 and +0.66 (benchmarks/label_free_score.py)
    by singling out the worst; among the nine under 5 they told little (-0.02 and +0.23)."""
    from ssl3d.training.losses import project_views, silhouette_losses

    if not (xyz.shape[0] == rgb.shape[0] == viewpoints.shape[0] == masks.shape[0]):
        raise ValueError(f"xyz {tuple(xyz.shape)}, rgb {tuple(rgb.shape)}, viewpoints "
                         f"{tuple(viewpoints.shape)} and masks {tuple(masks.shape)} must have "
                         f"one row per image")
    iou, fwd = [], []
    for i in range(0, len(xyz), batch_size):
        sl = slice(i, i + batch_size)
        _, sils = project_views(xyz[sl], rgb[sl], viewpoints[sl].unsqueeze(1), cfg)  # (B, 1, S, S)
        sil, mask = sils[:, 0], masks[sl].to(sils.device)
        iou.append(silhouette_iou(sil, mask).cpu())
        fwd.append(silhouette_losses(sil, mask, cfg)[1].cpu())
    return {"iou": torch.cat(iou), "affinity_fwd": torch.cat(fwd)}


def silhouette_iou(sil: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Intersection over union of two silhouettes, each thresholded at 0.5. sil, mask: (B, S, S).
    Returns (B,)."""
    inter = ((sil > 0.5) & (mask > 0.5)).flatten(1).sum(1)
    union = ((sil > 0.5) | (mask > 0.5)).flatten(1).sum(1).clamp_min(1)
    return inter / union


def result_key(split: str, tag: str = "", refine_steps: int = 0, by_mask: bool = False) -> str:
    """The metrics.json key (and predictions file suffix) of one evaluation: the split, with the
    tag before it and the refinement and mask-selected pose marks after it."""
    return ((f"{tag}_" if tag else "") + split + (f"_refine{refine_steps}" if refine_steps else "")
            + ("_maskpose" if by_mask else ""))


def fits_its_masks(key: str) -> bool:
    """Whether a :func:`result_key` names an evaluation that fits the very masks it reads
    (refinement, mask-selected pose), which therefore stores no label-free score."""
    return re.search(r"_refine\d+|_maskpose$", key) is not None


def scored_this_checkpoint(entry: dict, ckpt_path: Path, step: int) -> bool:
    """Whether a metrics.json ``entry`` was made from the checkpoint at ``ckpt_path`` as it is now,
    at training step ``step`` (a resumed run rewrites the file)."""
    return Path(entry["checkpoint"]).resolve() == Path(ckpt_path).resolve() and entry["steps"] == step


def alignment_settings(device: torch.device) -> dict:
    """Settings of the global-rotation fit. The protocol names Adam for 5000 steps at lr 1e-3;
    started from the best points of a coarse grid, fewer larger steps, stopped once the Chamfer
    stops falling, reach the same rotation (benchmarks/alignment_check.py compares them), on a
    smaller subsample on a CPU."""
    if device.type == "cuda":
        return {"steps": 1000, "lr": 3e-3, "max_clouds": 256, "max_points": 512, "tol": 1e-4}
    return {"steps": 300, "lr": 1e-2, "max_clouds": 48, "max_points": 192, "coarse_clouds": 16,
            "tol": 1e-4}


def mean_shape_baseline(data_dir, category: str, test_clouds: torch.Tensor, device: torch.device,
                        emd: bool = True, workers: int = 2, progress: bool = True,
                        image_size: int = 64) -> dict:
    """Chamfer (and EMD) of the category's mean training shape against every test cloud.

    It depends on the data (and the fit's settings) alone, so it is computed once per data set
    and device kind and cached in the data folder's cache (keyed by the clouds' contents and the
    settings); every later evaluation reads it back.
    Returns {"chamfer": (M,), "emd": (M,)} as :func:`ssl3d.evaluation.metrics.cloud_metrics`.
    """
    # At the training image size, whose decoded split training has already cached.
    train_clouds = load_split(data_dir, category, "train", image_size, progress=progress).clouds
    # 300 Adam steps on 512 clouds at once on a GPU; on a CPU each step sees a random 32 of the
    # same 512 (chair, 6,000 models: Chamfer x1000 7.79 in about 50 s on 2 cores, against the GPU's
    # 7.72; the earlier 100 steps on 48 clouds gave 8.11, a weaker baseline than the GPU's).
    fit = {"n_points": test_clouds.shape[1], "steps": 300, "max_clouds": 512,
           "batch": 0 if device.type == "cuda" else 32}
    digest = hashlib.sha1(repr(sorted(fit.items())).encode())
    for t in (train_clouds, test_clouds):
        digest.update(t.float().contiguous().numpy().tobytes())
    cache = resolve_paths(data_dir, category).cache_dir / \
        f"mean_shape_{category}_{'emd_' if emd else ''}{digest.hexdigest()[:12]}.npz"
    if cache.is_file():
        return dict(np.load(cache))
    if progress:  # about a minute on a CPU, with no bar of its own
        print(f"fitting the mean-shape baseline to {min(len(train_clouds), fit['max_clouds'])} "
              f"training clouds (once per data set; cached in {cache.parent})", file=sys.stderr,
              flush=True)
    mean = M.mean_shape(train_clouds, device=device, **fit)
    base = M.cloud_metrics(mean.expand(len(test_clouds), -1, -1), test_clouds, None, emd=emd,
                           workers=workers)
    save_npz_atomic(cache, {"mean": mean.numpy(), **base})
    return base


def evaluate_run(run, data_dir=None, split: str = "test", device: str = "cpu",
                 refine_steps: int = 0, workers: int = 2, emd: bool = True,
                 progress: bool = True, pose_select: str = "net", tag: str = "",
                 rotation_from: str = "", mean_data=None) -> dict:
    """Evaluate a run folder or checkpoint; writes metrics.json / results.md next to it.
    ``pose_select``: ``net`` (the selector, from the image alone) or ``mask`` (for a pose net of
    several hypotheses, the one whose projection best explains the test image and its mask).
    ``tag`` prefixes the metrics.json key and the predictions file (``real`` -> ``real_test``),
    so scoring another data set does not overwrite the run's own results (without one, another
    data folder's name is used). ``rotation_from``
    reuses the global rotation stored under that metrics.json key (e.g. ``test``: the one fitted
    on the training data's validation split) instead of fitting one on this data's validation
    split, for data sets too small to fit it on; the entry must be this checkpoint's.
    ``mean_data``: the data folder whose training split gives the mean-shape baseline (default: the
    run's training data when it is here, else ``data_dir``); an exported checkpoint records no
    data folder, so name its training data when scoring it on another set."""
    if pose_select not in ("net", "mask"):
        raise ValueError(f"pose_select must be 'net' or 'mask', got {pose_select!r}")
    if refine_steps < 0 or workers < 1:
        raise ValueError(f"refine_steps (--refine) must be 0 or more and workers (--workers) 1 or "
                         f"more, got {refine_steps} and {workers}")
    if mean_data is not None and not Path(mean_data).is_dir():
        raise FileNotFoundError(f"--mean-data {mean_data} is not a folder")
    ckpt_path = find_checkpoint(run)
    out_dir = ckpt_path.parent
    metrics_path = out_dir / "metrics.json"
    read_metrics = lambda: json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}  # noqa: E731
    ckpt = load_checkpoint(ckpt_path)
    trained_on = ckpt.get("data_dir")
    if not (data_dir or trained_on):
        raise ValueError(f"{ckpt_path} does not record its data folder; pass --data")
    if not Path(data_dir or trained_on).is_dir():  # a wrong --data, or the training data moved
        raise FileNotFoundError(f"data folder {data_dir} (--data) is not a folder" if data_dir else
                                f"{ckpt_path} was trained on {trained_on}, which is not a folder "
                                f"now; pass --data")
    if data_dir and not tag and trained_on and Path(data_dir).resolve() != Path(trained_on).resolve():
        # Another data set under the plain key would overwrite the run's own results.
        tag = Path(data_dir).resolve().name
        print(f"scoring {data_dir}, not the training data: results go under the tag {tag!r}")
    if not tag and ckpt_path.name.endswith("_last.pt"):
        # An unfinished run's state beside its stage's final cc.pt / nn.pt: keep their entries.
        tag = ckpt_path.stem
        print(f"scoring {ckpt_path.name}, an unfinished run's state: results go under the tag {tag!r}")
    data_dir = data_dir or trained_on
    category = ckpt.get("category", "")
    dev = torch.device(device)
    recon, pose, cfg = models_from_checkpoint(ckpt, ckpt_path, dev)
    started = time.time()

    def run_split(name: str) -> tuple[ViewSet, torch.Tensor, torch.Tensor, torch.Tensor]:
        views = load_split(data_dir, category, name, cfg.image_size, progress=progress)
        if refine_steps > 0:
            from ssl3d.evaluation.refine import refine_batch
            xyz, rgb, vps = refine_batch(recon, pose, cfg, views, refine_steps, dev,
                                         progress=progress, pose_select=pose_select)
        else:
            masks = views.masks if pose_select == "mask" else None
            xyz, rgb, vps = predict(recon, pose, views.images, masks=masks, cfg=cfg)
        return views, xyz, rgb, vps

    label_free = {}  # from the validation split, when this evaluation predicts it
    if rotation_from:
        stored = read_metrics().get(category, {}).get(rotation_from)
        if stored is None:
            raise ValueError(f"--rotation-from {rotation_from}: {metrics_path} has no entry "
                             f"{category}/{rotation_from} (evaluate on that data first)")
        if not scored_this_checkpoint(stored, ckpt_path, ckpt["step"]):
            raise ValueError(f"--rotation-from {rotation_from}: that rotation was fitted for "
                             f"{stored['checkpoint']} at step {stored['steps']}, not {ckpt_path} "
                             f"at step {ckpt['step']}; evaluate this checkpoint on its own "
                             f"validation data first")
        align = M.Alignment.from_dict(stored["alignment"])
    else:
        val, val_xyz, val_rgb, val_vps = run_split("val")
        align = M.fit_global_rotation(val_xyz, val.clouds, device=dev, **alignment_settings(dev))
        if not refine_steps and pose_select == "net":  # those fit the very masks they are scored on
            fit = silhouette_fit(val_xyz.to(dev), val_rgb.to(dev), val_vps.to(dev), val.masks, cfg)
            label_free = {"val_silhouette_iou": float(fit["iou"].mean()),
                          "val_affinity_fwd": float(fit["affinity_fwd"].mean())}
    rot = align.matrix()
    test, xyz, rgb, vps = run_split(split)
    scores = M.cloud_metrics(xyz, test.clouds, rot, emd=emd, workers=workers)
    pose_err = M.pose_errors(vps, test.viewpoints, rot)
    by_mask = pose_select == "mask" and cfg.pose_hypotheses > 1
    key = result_key(split, tag, refine_steps, by_mask)
    np.savez_compressed(out_dir / f"predictions_{key}.npz", xyz=xyz.numpy(), rgb=rgb.numpy(),
                        viewpoints=vps.numpy(), models=np.asarray(test.models),
                        rotation=rot.numpy(), pose_error_deg=pose_err)

    # The mean shape is that of the run's own training data (when it is here), also when scoring
    # another data set: a baseline that knew the test set's shapes would flatter it. Where it
    # does (an export scored on a set whose splits overlap, as benchmarks/make_real.sh makes
    # them), the count goes into the entry and the table says so.
    if mean_data is None:
        mean_data = trained_on if trained_on and Path(trained_on).is_dir() else data_dir
    base = mean_shape_baseline(mean_data, category, test.clouds, dev, emd=emd, workers=workers,
                               progress=progress, image_size=cfg.image_size)
    mean_paths = resolve_paths(mean_data, category)
    fitted_to = {m for m, _ in read_split(mean_paths.split_dir, mean_paths.split_prefix, "train")}
    overlap = sum(m in fitted_to for m in test.models)
    kind = f"{cfg.supervision}-supervised"
    if cfg.pose_labels:
        kind = "self-trained" + (f", keeping {cfg.pose_label_keep:g}" if cfg.pose_label_keep < 1 else "")
    method = f"ssl3d {cfg.stage.upper()}" + ("" if cfg.supervision == "self" else f" ({kind})")
    if refine_steps:
        method += f" + refine {refine_steps}"
    if by_mask:
        method += " + mask-selected pose"
    entry = {
        "method": method, "checkpoint": str(ckpt_path), "steps": ckpt["step"],
        "data": str(data_dir), "alignment": align.as_dict(),
        "alignment_from": rotation_from or "val", **M.summarise(scores["chamfer"], scores.get("emd"), pose_err),
        "mean_shape": {**M.summarise(base["chamfer"], base.get("emd"), None),
                       "fitted_on": str(mean_data), "scored_models_in_it": overlap},
        "label_free": label_free,
        "seconds": time.time() - started,
    }
    all_metrics = read_metrics()  # read late: another evaluation may have written meanwhile
    all_metrics.setdefault(category, {})[key] = entry
    metrics_path.write_text(json.dumps(all_metrics, indent=2))
    (out_dir / "results.md").write_text(results_table(all_metrics))
    return entry


def results_table(all_metrics: dict) -> str:
    """Markdown table of every category / split in a metrics.json."""
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    lines = ["| category | split | method | n | Chamfer x1000 | EMD x1000 | pose acc@30 | pose median (deg) |",
             "|---|---|---|---|---|---|---|---|"]
    for category, splits in all_metrics.items():
        for split, e in splits.items():
            ms = e["mean_shape"]
            own = ms.get("scored_models_in_it", 0)  # absent in metrics written before it was kept
            mean_name = "mean shape" + (f" (fitted to {own} of these {ms['n']})" if own else "")
            for name, row in ((e["method"], e), (mean_name, ms)):
                lines.append(f"| {category} | {split} | {name} | {row['n']} | "
                             f"{fmt(row['chamfer_x1000'], '.2f')} | {fmt(row['emd_x1000'], '.2f')} | "
                             f"{fmt(row['pose_acc_30'], '.1%')} | {fmt(row['pose_median_deg'], '.1f')} |")
    return "\n".join(lines) + "\n"
