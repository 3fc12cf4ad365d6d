"""Training configuration: one typed dataclass whose fields document themselves.

The defaults are the paper's released settings (the ``paper`` preset, METHOD sections 5-8). Every
field is exposed on the command line by ``ssl3d train`` (``--batch-size`` for ``batch_size``) and
saved inside every checkpoint, so a run can be rebuilt from its file alone.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Literal

from ssl3d.models import NetworkConfig


REFERENCE_SIZE = 64
"""Squared pixel distances (``sigma2``, the affinity and point-silhouette terms) are given in
pixels of a 64-px image (the paper's size), so a larger --image-size keeps the weights' balance."""


def px2_scale(image_size: int) -> float:
    """Factor turning squared distances in pixels of ``image_size`` into 64-px pixels."""
    return (REFERENCE_SIZE / image_size) ** 2


@dataclass
class TrainConfig:
    """Everything that defines a training run."""

    # --- what to train -------------------------------------------------------------------------
    stage: Literal["cc", "nn"] = "cc"
    """cc: geometric and pose cycle consistency (METHOD section 5); nn: adds nearest-neighbour
    silhouette consistency, starting from a CC checkpoint (section 6)."""
    supervision: Literal["self", "pose", "3d"] = "self"
    """self: the paper's method; pose: the true viewpoint replaces the pose net's output; 3d:
    Chamfer to the ground-truth cloud (an upper bound). The pose net is trained on the true pose
    in the last two, so pose metrics stay comparable."""
    pose_labels: str = ""
    """Self-training (supervision pose only): a run folder (its nn.pt, else cc.pt) or checkpoint
    of a self-supervised run whose pose net labels every training image; the labels are written
    to RUN_DIR/pose_labels.pt and read from there by a resumed run and by stage nn (a fresh stage
    cc labels again). This run then learns from those viewpoints as the pose-supervised baseline
    learns from the true ones and never reads the data's, so no pose label is used anywhere
    (evaluation calls it "self-trained"). Or a labels file
    (ssl3d.training.checkpoint.save_pose_labels: a viewpoint per training image and the images
    to keep, e.g. benchmarks/view_consensus.py's consensus of several runs). Empty: the data's
    viewpoints."""
    pose_label_keep: float = 1.0
    """With pose_labels: the share of training images kept, those whose label the teacher is
    surest of by the side gap (how much worse its cloud explains the image from the view turned
    half a turn; ssl3d.training.losses.side_gap); the others are left out of training. 1: all.
    On one airplane run the top 40% held 90.3% labels within 30 deg, all images 77.2%; on one
    chair run 93.1% against 79.9% (benchmarks/pose_label_check.py, session 12)."""
    pose_label_noise_deg: float = 0.0
    """Pose-supervised baseline: Gaussian noise of this standard deviation (degrees) added to each
    training viewpoint label, azimuth and elevation, drawn afresh every step (0 = off; an
    ablation, not in the paper). It asks what a pose a few degrees off costs the shapes: the
    self-supervised pose nets' median test error is 7-12 deg."""
    flip_augment: bool = False
    """Show each training sample flipped left to right with probability 1/2: the image and mask
    flipped, the ground-truth cloud mirrored across x = 0 and the viewpoint label moved to
    (pi - azimuth, elevation) (ssl3d.data.dataset.flip_batch), so a flipped sample is a
    geometrically exact view of the mirrored object, a new training shape for any method (only
    the shading differs: the renders' light, fixed in the camera frame, then comes from the other
    side). Stage nn flips an input and its neighbour together. Not in the paper."""
    # --- schedule ------------------------------------------------------------------------------
    steps: int = 200_000
    """Training iterations (optimiser steps of each network)."""
    batch_size: int = 2
    """Images per step (the global batch when training on several GPUs)."""
    lr: float = 5e-4
    """Adam learning rate of both optimisers."""
    lr_decay_steps: int = 0
    """Cosine decay of the learning rate (of the networks lr_decay_nets names) over the last this
    many steps of this stage: the first of them runs at ``lr``, the later ones ever lower towards
    zero (0 = constant, as in the paper; the critic keeps its rate). A pose net still moving at
    a high rate gives the shapes a pose that jitters from step to step, which costs them like
    noisy labels do (see pose_label_noise_deg)."""
    lr_decay_nets: Literal["both", "pose", "recon"] = "both"
    """Which networks' rate lr_decay_steps lowers; the other keeps ``lr``. "pose" steadies the
    viewpoints the shapes learn from while leaving the shape network free to move."""
    ema_decay: float = 0.0
    """Keep an exponential moving average of both networks' weights (this factor per step; 0 =
    off, as in the paper) and write it, not the last weights, into the stage's final checkpoint,
    which evaluation, prediction and stage nn use (the training-state checkpoint keeps both, so a
    resumed run is exact). It is meant to average out the networks' step-to-step jitter without
    lowering the rate, over about 1 / (1 - ema_decay) steps; the factor ramps up over the stage's
    first steps (trainer.ema_decay_at). The stage's training is unchanged; a stage that starts
    from its checkpoint (stage nn, --init) starts from the average."""
    beta1: float = 0.9
    """Adam beta1 of both optimisers."""
    carry_optimiser: bool = False
    """A stage that starts from a checkpoint (stage nn from RUN_DIR/cc.pt, or --init) starts its
    Adam optimisers (and the view prior critic's) from the moments of the run it starts from,
    read from that run's training-state file (RUN_DIR/cc_last.pt, or the --init file itself,
    which must then be a *_last.pt), at this stage's rates; off, they start afresh (the paper
    does not say). Fresh moments make Adam's first step sign(gradient) x lr for every weight,
    whatever the gradient's size: a jolt to every weight of a trained network at once (a CPU
    probe from a trained chair, session 33: Chamfer 3.36 -> 3.54 after 25 fresh stage-CC steps,
    back to 3.34 after 100). With ema_decay the stage starts from the average while the moments
    are those of the last weights. Not in the paper."""
    seed: int = 0
    """Seeds weights, batch order and sampled viewpoints."""
    # --- model ---------------------------------------------------------------------------------
    image_size: int = 64
    """Training image size in pixels (square)."""
    n_points: int = 1024
    """Points per predicted cloud."""
    hidden: int = 128
    """Width of the fully connected layers."""
    pose_hidden: int = 0
    """Width of the pose net's fully connected layers alone; 0 = ``hidden``. To tell whether a
    wider network helps through the pose net or the reconstruction net."""
    activation: Literal["relu", "leaky_relu"] = "relu"
    """Hidden-layer nonlinearity of both networks: relu (the paper) or leaky_relu (slope 0.2),
    whose units cannot die."""
    pose_hypotheses: int = 1
    """Viewpoints the pose net proposes per image (1 = the paper). With M > 1, training projects
    the cloud at all M, keeps the one that best explains the input (image and mask losses of the
    pose optimiser), trains only that one (winner takes all, also in the pose cycle) and trains a
    selector to pick it; inference uses the selector. Meant against the symmetric-pose local
    minima of self-supervision; the supervised baselines use hypothesis 0."""
    pose_sectors: bool = False
    """With pose_hypotheses M > 1 (self-supervision): hypothesis j keeps its azimuth within
    1.5 pi / M of 2 pi j / M (overlapping sectors; ssl3d.models.NetworkConfig.pose_sectors), so
    every image has a candidate in every direction and the selector learns which sector the view
    is in. Without it the hypotheses of trained chair models gathered around the front and the
    back (two clusters of four), leaving no candidate within 30 deg for 14-18% of side views
    (benchmarks/results/session16_cpu_hypotheses.txt)."""
    w_cycle_select: float = 0.0
    """Self-supervision with pose_hypotheses > 1: weight of a cross-entropy in the pose loss that
    trains the selector on the pose cycle's renders, whose views are known, to pick the hypothesis
    nearest the rendered view (the one the cycle's winner-takes-all L1 trains); 0 = off (not in the
    paper). Why: the selector is otherwise taught only which hypothesis the cloud fits best, which a
    cloud that fits several turns alike (a stool's) may not tell. With W = 1 and
    pose_cycle_cut_share 0.5 from scratch (the best-fit choice; session 31) the selected view missed
    four-legged stools by a median 3.2-5.4 deg, folded to a quarter turn, and their clouds scored
    7.05-8.72 (four of six runs, split on the CPU; seed 4's, the worst, was not exported; five plain
    runs of sessions 21-23: 10.5-21.0 deg, 8.13-16.20, ranges that overlap); six chair seeds
    averaged 4.17 with no collapse against 4.34 for the ten plain runs of sessions 12-19 (one-sided
    Mann-Whitney p = 0.11); the other chairs scored a little worse (3.61 against 3.43). Without the
    cut: 3.78-4.05 on four seeds, a half collapse, and one run that gave its stools a chair's back
    (7.93 overall on the GPU, its stools 46.44 on the CPU). From a trained run (1,500 stage-NN
    steps, one run) it changed nothing on the whole (4.22 against 4.18). Session 32: on airplanes
    (with the cut, silhouette_form max and the stage-NN rate decay) three of four seeds scored
    worse than the same seeds without it (mean 3.86; five seeds without it 3.56), all four posed
    fewer right (80.8 / 84.5 / 82.0 / 80.5% against 81.5 / 88.3 / 91.2 / 90.0%), and 15.5% and
    33.3% of two exports' clouds came out back to front (on the CPU; 2.3-2.5% in the recipe's two
    best runs without it, other seeds, on the GPU); on chairs at hidden 256 four seeds
    averaged 4.12 (3.92 at the preset's width, same seeds). Suggested for chairs with the cut,
    not for airplanes; not in the preset (the chairs' gain on the mean is not yet clear; cars
    untried)."""
    hypothesis_choice: Literal["reprojection", "selector"] = "reprojection"
    """Self-supervision with pose_hypotheses > 1: the hypothesis the reconstruction learns at and
    whose image and mask terms train the pose net, for each input image: the one whose projection
    of the cloud explains the image best (reprojection), or the selector's pick (selector; not in
    the paper), the selector then learning from the pose cycle alone (needs w_cycle_select > 0).
    Why (a guess): where the cloud fits many views alike (a blob drawn for a stool), the best fit
    is chance, and the reconstruction learns at views that disagree from image to image. Not
    recommended yet (session 30, with pose_cycle_cut_share 0.5 and w_cycle_select 1, three options
    changed at once): from scratch both chair seeds collapsed to few azimuths (pose 30.5% and
    18.5%); their stools scored 6.52 and 8.51, the first below all five plain runs split
    (8.13-16.20), the second within them (pose-supervised exports 3.55-3.68), and the selected view
    was within 10 deg of a four-legged stool's azimuth, folded to a quarter turn, for 70% and 58%
    of them (medians 7.2 and 6.9 deg; the plain runs 10.5-21.0). In stage NN from a trained run it
    changed little (3,000 steps: 4.05 and 4.09 against seed 0's plain 4.12; stools 10.37 and 10.47
    against 11.56), and it posed fewer test chairs right (72.5-77.3% against 80.2%). Session 31:
    from scratch with the early distribution prior (w_view_distribution 1 for 1,000 steps) both
    seeds collapsed too (7.99 and 10.22); in stage NN after a stage CC with the best-fit choice
    (and w_cycle_select 1, pose_cycle_cut_share 0.5) 3.78 and 3.98 against 3.84 and 3.96 from the
    same stage CC, pose 79.0% and 77.2% against 84.3% and 80.7%. Not recommended."""
    hypothesis_temperature: float = 0.0
    """How softly the reconstruction chooses among the pose hypotheses (pose_hypotheses > 1,
    self-supervision). 0: it learns only from the projection at the best one (winner takes all).
    T > 0: the image, mask and affinity terms are taken at every hypothesis's projection, weighted
    softmax(-(s - s_min) / (T s_min)) by their scores s (a hypothesis 100 T % worse than the best
    gets e^-1 of its weight; s_min holds a loss floor no shape removes, so the same T is softer
    where that floor is high, e.g. bce_form released); the other terms, the pose net and its
    selector still use the best, and the logged image / mask / affinity terms are the best's.
    Why: when a shape is wrong in a way a mirrored view hides (an airplane's wings placed
    forward, drawn aft, fit seen from the far side), the winning view hides the error and the
    shape never learns it; a share of the gradient from the runner-up views lets the shape start
    to move."""
    doubt_gap: float = 0.0
    """Self-supervision with pose_hypotheses > 1: the reconstruction loss takes each image's own
    reprojection terms (image, mask, affinity) as a mean weighted by min(1, g / doubt_gap), where
    g is how much worse the best hypothesis at least 45 deg of azimuth from the chosen one explains
    the image (relative gap of the selection scores, s_alt / s_best - 1); 0 = off (every image
    weight 1). A weighted mean: the terms keep their scale, the doubtful images' share going to
    the sure ones. The pose net and the other terms are unchanged; the logged image, mask and
    affinity terms stay the unweighted ones, and doubt_weight logs the mean weight. Why: the
    clouds of wrongly posed chairs score 8.70 against 3.53 (session 20,
    benchmarks/pose_vs_chamfer.py), on training images as on test ones: the reconstruction
    learns clouds that fit the wrong view. An image that another, distant view explains almost
    as well teaches the shape less."""
    true_views_for: Literal["none", "all", "wrong", "right", "elevation"] = "none"
    """An ablation (not in the paper; it reads the ground-truth viewpoints, which
    self-supervision otherwise never sees): the reconstruction's own image, mask and affinity
    terms (and the point-silhouette and transport pulls) are taken at the true view for every
    image (all), for the images whose chosen view is more than 30 deg from it (wrong) or within
    30 deg (right), or the chosen azimuth with the true elevation for every image (elevation,
    under which view_search_moved reads about 1); the pose net and the neighbour terms keep the predicted views; with
    critic_real input_view the view prior's critic takes its real silhouettes there too. The
    share of images moved and the terms there are logged as view_search_moved, view_search_image
    and view_search_mask. It asks how much of the gap to the pose-supervised baseline the wrong
    views make and how much the imprecise right ones. It compares views in the network's frame,
    so it holds only for a run whose learnt frame is the ground truth's (the rotation ssl3d
    evaluate fits near the identity), such as one started with --init from a checkpoint checked
    so."""
    cycle_first_view: Literal["pose", "reconstruction"] = "pose"
    """The view of the render the geometric cycle re-reconstructs first: the pose net's chosen
    view (pose: the paper; every run before session 38), or the view the reconstruction learns
    at (reconstruction). They differ only under true_views_for or a view search. An ablation:
    with true views the supervised baselines' cycle starts from the true view, self-supervision's
    from the pose net's."""
    view_search_deg: float = 0.0
    """Self-supervision: before the reconstruction learns from the chosen hypothesis's projection,
    try that view turned by +-D and +-2D deg of azimuth and +-D deg of elevation, and let the
    reconstruction learn from whichever of the seven views explains image and mask best (0 = off;
    at most 30; not in the paper). The pose net still learns from its own view, and two terms
    stay at it: stage nn's neighbour terms (the neighbour is another object, whose colours this
    cloud cannot be scored against) and the geometric cycle's input projection. Why: a predicted view a few
    degrees off makes the shape fit the silhouette from the wrong angle; averaged over many
    images this pulls points towards the vertical axis (self-supervised chairs spread their
    points 0.13 in x and z, the pose-supervised baseline 0.17, the ground truth 0.18)."""
    view_search_turns: int = 0
    """Self-supervision: before the reconstruction learns from the chosen hypothesis's projection,
    also try that view turned about the vertical by each multiple of 360/T deg of azimuth (T =
    this; 0 = off, the paper; 2 = the half turn, 4 = quarter turns too; not in the paper), and let
    the reconstruction learn from whichever explains image and mask best (with view_search_deg,
    the local steps are tried too). The pose net keeps learning from its own view, as under
    view_search_deg. Why: a cloud turned with its camera projects the same, so a view a half or
    quarter turn off makes the shape network draw the chair turned for that image (of the
    wrongly posed test chairs' clouds, 22% are nearest the truth after a quarter turn and 20%
    after a half turn or a front-back mirror, session 28); learning at the best turn of the view lets the cloud keep the
    orientation the other images give it. Not recommended: at 4, two of four chair seeds collapsed
    to few azimuths (perhaps because the turns let a collapsed pose net still train the shape at
    four; seed 2 had collapsed in two of three plain runs before) and of the others one was worse
    and one better than without it; at 2, all four airplane seeds got worse (session 29)."""
    neighbour_view_search_deg: float = 0.0
    """Stage nn, self-supervision: the neighbour's view is the pose net's azimuth for it plus
    whichever of 9 even offsets from -W to +W deg (W = this; 0 = off, the paper; at most 90; not in
    the paper) makes the cloud's silhouette match the neighbour's mask best (the mask loss), and
    the neighbour terms are taken there; the pose net still gets the neighbour mask term's
    gradient through its own azimuth. Why: a stool (10.7% of the procedural chairs) repeats after
    a quarter turn, so its azimuth is ambiguous, and the pose net's error on it, folded to a quarter
    turn, is large (median 10.5-21.0 deg; 22.5 if random; session 29). Projected at such a view, a
    neighbouring stool's mask would ask the cloud to look alike from many azimuths, and the
    self-supervised stool clouds are blobs (12.80 against 3.55-3.68 for the pose-supervised
    exports). With W = 45 the neighbour asks only that some turn within a quarter of its view
    match. Not recommended: 1,500 stage-NN steps from a trained chair run scored 4.38 and 4.30
    against 4.18 and 4.29 plain, the stools 13.52 and 13.25 against seed 0's plain 12.40; with the neighbour terms off (w_neighbour 0) for those
    steps the stools scored 13.99 (one seed, from a run that already drew blobs) (session 30)."""
    pose_input_blur: float = 0.0
    """Standard deviation in pixels of a Gaussian blur the pose net applies to its every input,
    real images and the pose cycle's renders alike, at training and at inference (0 = off, the
    paper; not in the paper). Why: the pose net learns the views mostly from the cycle's renders
    of its own clouds, speckled and noisy in colour, and is used on crisp real images; it poses
    the renders 1.2-1.8 deg off (median) and the real images 4.7-5.8 deg off
    (benchmarks/cycle_gap.py). A blur brings the two kinds of image nearer each other."""
    shape_code_dims: int = 0
    """How many of the shape embedding's ``hidden`` dims the structure decoder reads (0 = all, the
    paper; not in the paper): a low-dimensional shape space, in which a cloud drawn to fit a
    silhouette from a wrong view may be harder to express than a chair is. Saved with the model."""
    shape_code_ramp_steps: int = 0
    """Progressive conditioning (Unicorn, Monnier et al. 2022; not in the paper): over the first
    this many steps of the stage the structure decoder reads a growing share of the shape
    embedding: none at the first step (every image gets one cloud, a template), then a number that
    grows geometrically (trainer.code_dims_at: 15 of 256 at half the ramp, 63 at three quarters),
    all of them (or shape_code_dims) from the ramp's end (0 = off, the paper). In a fresh stage cc
    the decoder's weights on the embedding start at zero, so that a dim switched on adds nothing
    at first; a stage that starts from a checkpoint (stage nn, --init) keeps its trained weights
    and only masks the dims (give stage nn --shape-code-ramp-steps 0 to leave them all read).
    Why: a cloud free from the start can be drawn to fit a silhouette from a wrong view (a chair
    seen from behind taken for one seen from the front); while the shapes are few, the views must
    be those from which one shared shape explains the images."""
    shape_code_scale: float = 1.0
    """Factor on the shape embedding before the structure decoder (1 = the paper). 0 makes every
    image share one cloud, a template, so the pose net must explain every image with a single
    shape: a first phase against front/back reversals, to be followed by a run at 1 with --init
    RUN/cc.pt. The switch is abrupt: at 0 the structure encoder gets no gradient, so the run at 1
    starts it untrained (Unicorn's progressive conditioning widens the code gradually)."""
    mirror_points: bool = False
    """The reconstruction net predicts half the points and mirrors them across x = 0, so every
    cloud is exactly left-right symmetric (False = the paper; needs an even n_points). A hard
    form of the symmetry prior: the symmetry term about x = 0 is then zero (w_symmetry can be 0).
    The soft term leaves a sheet of points on the mirror plane free: at W = 10,000 about half of
    them lay there (two runs; docs/EXPERIMENTS.md, session 24); no symmetry term pulls mirrored
    points there. Measured only in small CPU checks so far (docs/EXPERIMENTS.md, session 24)."""
    # --- projection ----------------------------------------------------------------------------
    n_views: int = 4
    """K: projections per step, the predicted view plus K - 1 random ones."""
    sigma2: float = 0.4
    """Variance of the silhouette kernel in px^2 at 64 px (scaled with the image size)."""
    beta: float = 100.0
    """Sharpness of the colour projection's inverse-depth softmax."""
    silhouette_form: Literal["tanh_sum", "max"] = "tanh_sum"
    """How the points' Gaussian kernels make a silhouette: tanh of their sum (the paper's) or
    their maximum. The sum grows with point density, so a correct cloud's silhouette comes out
    wider than the mask (a ground-truth airplane of 1,024 points covers 1.8x its masks' area at
    64 px) and fitting the mask thins and shortens thin parts such as wings; the maximum does
    not depend on density (ssl3d.ops.projection.SILHOUETTE_FORMS). Measured: max is better on
    airplanes and cars, worse on chairs, whose thin legs it covers only with closely spaced
    points (README)."""
    colour_sigma2: float = 0.0
    """0 (the paper's): within a pixel's 1-px well (a hard box) the colour projection weighs
    points by depth alone, so the image term reaches the viewpoint and the points' image
    positions only through the depth differences of the points sharing a well, which a turn of
    the camera hardly changes (at a trained chair the pose net gets 1/1800 of the mask term's
    gradient from it: benchmarks/pose_gradients.py). S > 0: each point's weight also falls as a
    Gaussian of its distance to the pixel, variance S px^2 of the training image (not rescaled
    with the image size, like the well), so colour edges within a surface move with the camera
    and the points. The price: the distance term (down to -2 / (2 S) at the well's corner)
    competes with the depth term, so a nearer surface occludes less sharply (at S = 0.4 a point
    at the corner loses as much as one 0.1 farther at depth 2) (ssl3d.ops.projection.splat_colour)."""
    # --- loss weights: reconstruction optimiser ------------------------------------------------
    w_image: float = 100.0
    """Weight of the image reprojection loss in the reconstruction loss."""
    w_mask: float = 100.0
    """Weight of the mask cross-entropy in the reconstruction loss."""
    w_affinity: float = 1e-4
    """Weight of each affinity direction (forward and backward) in the reconstruction loss. Its
    squared distances are in pixels of a 64-px image at every image_size, as sigma2 is."""
    w_cycle_3d: float = 1e4
    """Weight of the geometric cycle (Chamfer between re-reconstructions and the cloud)."""
    w_point_silhouette: float = 0.0
    """Weight of the mean squared pixel distance (64-px pixels, as sigma2) from each projected
    point to the true silhouette (at the predicted view, and the neighbour's in stage nn); 0 =
    off, as released.
    It gives stray points, which no pixel loss reaches, a way back."""
    w_transport: float = 0.0
    """Weight of the sliced transport term (0 = off): the sliced 2-Wasserstein distance, in 64-px
    px^2, between the projected points and the true silhouette's area (at the predicted view,
    and the neighbour's in stage nn; :func:`ssl3d.ops.sliced_silhouette_distance`). The pixel
    losses are met by any point density, so points bunch where every input's silhouette lies
    and thin wide parts (wings) get a few scattered points; this term asks the points to spread
    over the silhouette as evenly as its area does. It lowered EMD on chairs and pose-supervised
    airplanes but not Chamfer, and raised the pose-supervised chair Chamfer (README, Results):
    off in presets."""
    transport_directions: int = 16
    """Lines (angles pi k / L) along which the transport term compares the point and silhouette
    distributions."""
    cycle_start: int = 0
    """Steps before the geometric cycle is switched on (0 = from the first step, as released).
    From the start, the cycle term is met most cheaply by an encoder whose output ignores the
    image, and training can collapse to one shape for every input."""
    cycle_warmup: int = 0
    """Steps, after cycle_start, over which the cycle weight ramps linearly up to w_cycle_3d."""
    cycle_gradient: Literal["full", "stop_target", "stop_all"] = "full"
    """Which paths of the geometric cycle carry gradients. full (as released): the Chamfer pulls
    the re-reconstructions towards P and P towards them, and flows through the projections into
    P; a network that ignores its input meets it at no cost, so it favours shape collapse.
    stop_target: P is a fixed target (the projections still carry gradients into P); stop_all:
    P and the projections are both fixed, so the cycle only teaches the network to rebuild its
    own clouds from new views (self-distillation) and cannot pull clouds together."""
    w_outlier: float = 0.0
    """Weight of the stray-point term (0 = off, as released): the mean over points of
    max(0, d_k^2 - t m), with d_k a point's distance to its outlier_k-th nearest neighbour in
    its own cloud, m the cloud's median d_k^2 and t = outlier_threshold (at the default 4, only
    points more than twice the usual spacing from the rest are pulled back, together with that
    neighbour). A point inside the silhouette's cone but far along the viewing ray gets no
    gradient from any pixel loss; left there it stretches the bounding box that evaluation
    normalises by and can mislead the global alignment."""
    outlier_k: int = 8
    """k of the stray-point term."""
    outlier_threshold: float = 4.0
    """The stray-point term pulls a point once its d_k^2 exceeds this many times its cloud's
    median d_k^2 (4: twice the usual spacing). Points along thin parts (wing tips, chair legs)
    lie on lines, where the k-th neighbour is farther than on a surface; 16 and 64 were tried
    for that reason and changed little (README, Results)."""
    w_supervised_3d: float = 1e4
    """Weight of the Chamfer to the ground-truth cloud (supervision = 3d only)."""
    w_symmetry: float = 0.0
    """Weight of the reflection-symmetry Chamfer term (METHOD section 7); 0 = off, as released."""
    symmetry_axis: Literal["x", "y", "z"] = "x"
    """Axis of the predicted cloud whose sign the symmetry term flips: a fixed plane x = 0 of the
    network's own frame, which the learned frame is meant to align with (symmetry_plane =
    fixed only)."""
    symmetry_plane: Literal["fixed", "best_vertical"] = "fixed"
    """Where the symmetry term mirrors. fixed: across symmetry_axis = 0 of the network's frame.
    best_vertical: across the vertical plane (through the origin, containing the y axis) about
    which the batch's first 32 clouds (128 points each) are most symmetric, searched every step
    over 36 planes 5 deg apart (a searched stand-in for METHOD section 7's learned plane). The
    networks' frame is arbitrary: in self-supervised airplane runs it settled about 135 deg from
    the one the fixed plane x = 0 fits, so that plane cut the airplane diagonally and the term
    made wings and fuselage alike (README, Results). The logged symmetry_plane_deg is the plain
    mean of the steps' angles over each log interval: read it only where the plane is steady."""
    symmetry_self_match: bool = True
    """Whether a point may match its own mirror image in the symmetry term's Chamfer (True: the
    plain Chamfer). A point on the mirror plane is its own mirror image and costs the plain term
    nothing. False excludes that match. Measured on chairs (docs/EXPERIMENTS.md, session 24): no
    change (4 seeds, 4.36 against 4.38), and the points on the plane stay (seed 1: 32% within
    0.003 of it, against 22% with the plain term and 1.3% in the ground truth): a sheet of points
    on the plane pairs with its own neighbours' mirror images about as cheaply."""
    w_view_prior: float = 0.0
    """Weight of the adversarial view prior (0 = off, as released; not in the paper). A critic
    learns to tell the cloud's silhouette at the input's own (predicted) viewpoint from its
    silhouettes at the K - 1 random viewpoints; the reconstruction net is trained to fool it
    (non-saturating GAN loss). A flat sheet facing the camera explains the input perfectly but
    looks nothing like an object from the side, so this term removes that degenerate solution,
    which the paper's losses leave open (README, Results)."""
    critic_lr: float = 1e-4
    """Adam learning rate of the view prior's critic (betas 0.5, 0.999)."""
    critic_real: Literal["input_view", "mask"] = "input_view"
    """What the view prior's critic learns to call real: the cloud's own silhouette at the
    input's predicted viewpoint (``input_view``, after Kato and Harada), or the input's
    ground-truth mask (``mask``: random views must then look like the data's silhouettes, splat
    speckle included)."""
    critic_r1: float = 0.0
    """Weight gamma of the critic's R1 gradient penalty, gamma / 2 * E ||d critic / d real||^2
    (0 = off). It keeps the critic smooth on real silhouettes, a standard stabiliser of GAN
    training (Mescheder et al. 2018)."""
    # --- loss weights: pose optimiser ----------------------------------------------------------
    w_pose_image: float = 1.0
    """Weight of the image reprojection loss in the pose loss."""
    w_pose_mask: float = 1.0
    """Weight of the mask cross-entropy in the pose loss."""
    w_pose_cycle: float = 1.0
    """Weight of the pose cycle L1 between pose(I_k) and the sampled v_k."""
    pose_cycle_cut_share: float = 0.0
    """Self-supervision: the share of each batch's clouds (0 = none, the paper; not in the paper)
    whose pose-cycle renders show only the cloud's lower part, the points below a height that
    keeps a random 40-80% of them (the rest are replaced by copies of kept points); the geometric
    cycle and the view prior keep the whole cloud's renders. Why: the pose net learns the views
    mostly from renders of its own clouds, and (a guess) a chair's back tells its azimuth so plainly
    that it need not learn to read the legs and seat. Stools (10.7% of the procedural chairs) have no
    back: the best of the 8 pose hypotheses of a plain run is 8.2 deg from a four-legged stool's
    azimuth, folded to a quarter turn (median; chairs 1.6; 8 independent random guesses: about
    3.7, 8 hypotheses 45 deg apart: about 11, so this does not show by itself that the net cannot
    read stools). A chair cut below its back looks like a stool whose view is known. Not recommended alone: from a trained chair run it changed little (1,500 stage-NN
    steps at P = 0.5: 4.11 and 4.17 against 4.18 and 4.29 plain; stools 11.97-12.10 against seed
    0's plain 12.40),
    and the hypothesis the selector picks read the stools no better; a run from scratch scored
    5.58, its stools 23.12 (session 30). With w_cycle_select 1 from scratch (session 31) none of six
    chair seeds failed, against two of six with w_cycle_select alone (one chance-sized difference;
    results there)."""
    w_view_distribution: float = 0.0
    """Weight, in the pose loss, of the viewpoint-distribution prior (0 = off; not in the paper;
    self-supervision only): the squared first and second circular moments of the batch's
    predicted azimuths, which are 0 for the uniform azimuths of the training views. It penalises
    a pose net that puts every image at one azimuth (a viewer-centred solution), or at two
    opposite ones. Computed over each process's share of the batch."""
    view_distribution_steps: int = 0
    """Apply w_view_distribution only in stage cc's first this many steps, never in stage nn (0 =
    in every step of both stages). Meant against the pose collapse, which sets in early: an
    untrained pose net gives every image about the same azimuth, and a collapsed run never leaves
    that. Switched off later, the prior cannot cost the trained model as it did when run in every
    step (README Results). Under cuda_graph the step is captured again when it switches off."""
    # --- stage NN ------------------------------------------------------------------------------
    neighbours: int = 5
    """k: neighbours kept per training image (the authors sampled 5 of the 6 closest)."""
    w_neighbour: float = 1.0
    """Stage nn: weight of the neighbour's silhouette terms (mask, affinity, point-silhouette,
    transport) in the reconstruction loss, relative to the input's own; 1 = the paper's equal
    weights (the pose loss's neighbour mask term keeps weight 1; stage cc has no neighbour). The
    neighbour's silhouette is the one real image, not a render of the cloud, that shows a
    similar shape from a second view."""
    init: str = ""
    """Checkpoint to start from. Stage nn: empty = RUN_DIR/cc.pt; stage cc: empty = random
    weights, a checkpoint = fine-tuning (its networks must have this config's architecture)."""
    # --- released vs intended forms (METHOD section 8) -----------------------------------------
    affinity_form: Literal["released", "intended"] = "released"
    """released: the per-pixel penalty the authors' code computes; intended: the 2D silhouette
    Chamfer via distance transforms."""
    affinity_empty_cost: float = 0.0
    """Intended affinity only: the extra cost lam (px^2 of a 64-px image, as sigma2) of a pixel
    with no mass in the distance maps; 0 = the largest squared distance in the image. The tanh
    silhouette rarely reaches 1, so a large lam makes the backward direction mostly a fill
    penalty."""
    bce_form: Literal["released", "intended"] = "released"
    """released: tanh silhouette fed to a sigmoid cross-entropy as a logit; intended: proper BCE."""
    azimuth_error: Literal["plain", "wrapped"] = "plain"
    """plain: |a - b| as released (ignores the wrap at +-180 deg); wrapped: the shorter way round."""
    cycle_form: Literal["released", "intended"] = "released"
    """released: Chamfer of [P, P_0 .. P_{K-2}] against P (a zero term, P_{K-1} unused);
    intended: P_0 .. P_{K-1}."""
    weight_decay: Literal["released", "intended"] = "released"
    """released: declared but never applied; intended: L2 1e-5 on conv and 1e-3 on FC weights."""
    reference_ops: bool = False
    """Use the dense reference forms of the projections and Chamfer (every point against every
    pixel / point): slow, for benchmarks and checks."""
    # --- run -----------------------------------------------------------------------------------
    device: str = "cpu"
    """cpu, cuda or cuda:N (under torchrun each process takes its local rank's GPU)."""
    amp: bool = False
    """bf16 autocast of the networks on CUDA (projections and losses stay float32)."""
    cuda_graph: bool = False
    """Capture the whole step (both networks, every loss, both backward passes and Adam steps)
    in a CUDA graph once and replay it: small batches are bound by kernel launches, which a
    replay skips. CUDA only; needs a constant geometric-cycle weight (cycle_start = cycle_warmup
    = 0). Same computation as the eager step. Under torchrun the gradients are averaged by
    flat all-reduces inside the graph (one for both networks, one for the critic) instead of
    by DDP."""
    log_every: int = 100
    """Steps between loss logs (TensorBoard, train.log, non-finite check)."""
    image_every: int = 2000
    """Steps between input / projection image logs."""
    checkpoint_every: int = 5000
    """Steps between checkpoints (one is always written at the end)."""
    snapshot_every: int = 0
    """Steps between snapshots of the networks alone (no optimiser state; each holds what a final
    checkpoint would, the weight average with ``ema_decay``, and loads like one) kept as
    OUT/snapshots/STAGE_STEP.pt, to study how a run's poses and shapes form
    (``benchmarks/view_trace.py``); 0 = none. Each costs a final checkpoint's disk space."""
    progress: bool = True
    """Show a progress bar."""
    stop_on_collapse: bool = False
    """Stop a self-supervised run when the pose-collapse warning fires (from step 1,500 at a high
    limit, from half the steps at a low one; such runs score far worse), keeping its resumable
    last checkpoint but writing no final one, and fail with an error that says so: a seed sweep
    then moves on to the next seed instead of finishing a lost run."""

    def network_config(self) -> NetworkConfig:
        return NetworkConfig(n_points=self.n_points, image_size=self.image_size, hidden=self.hidden,
                             pose_hidden=self.pose_hidden, activation=self.activation,
                             pose_hypotheses=self.pose_hypotheses, pose_sectors=self.pose_sectors,
                             pose_input_blur=self.pose_input_blur,
                             shape_code_scale=self.shape_code_scale,
                             shape_code_dims=self.shape_code_dims,
                             mirror_points=self.mirror_points)

    def pixel_sigma2(self) -> float:
        """The silhouette kernel's variance at this image size (``sigma2`` is given at 64 px)."""
        return self.sigma2 / px2_scale(self.image_size)

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistent field."""
        for name in ("cycle_start", "cycle_warmup", "hypothesis_temperature", "w_transport",
                     "w_view_distribution", "view_distribution_steps", "colour_sigma2",
                     "w_neighbour", "snapshot_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("steps", "batch_size", "n_views", "neighbours", "log_every", "image_every",
                     "checkpoint_every", "outlier_k", "transport_directions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_views < 2:
            raise ValueError(f"n_views must be >= 2 (the predicted view plus random ones), got {self.n_views}")
        if self.affinity_empty_cost < 0:
            raise ValueError(f"affinity_empty_cost must be >= 0, got {self.affinity_empty_cost}")
        if self.outlier_threshold < 1:
            raise ValueError(f"outlier_threshold must be >= 1 (a multiple of the median), got "
                             f"{self.outlier_threshold}")
        if self.w_outlier > 0 and self.outlier_k >= self.n_points:
            raise ValueError(f"outlier_k must be below n_points ({self.n_points}), got {self.outlier_k}")
        if self.pose_sectors and (self.pose_hypotheses < 2 or self.supervision != "self"):
            # The supervised baselines train hypothesis 0, which sectors would confine.
            raise ValueError("pose_sectors needs pose_hypotheses > 1 and supervision self (got "
                             f"{self.pose_hypotheses} and {self.supervision!r})")
        if self.hypothesis_temperature > 0 and (self.pose_hypotheses < 2 or self.supervision != "self"):
            raise ValueError("hypothesis_temperature > 0 needs pose_hypotheses > 1 and supervision "
                             f"self (got {self.pose_hypotheses} and {self.supervision!r})")
        if not math.isfinite(self.doubt_gap) or self.doubt_gap < 0 or (self.doubt_gap > 0 and (
                self.pose_hypotheses < 2 or self.supervision != "self"
                or self.hypothesis_temperature > 0 or self.view_search_deg > 0)):
            raise ValueError(f"doubt_gap must be finite and >= 0, and > 0 needs pose_hypotheses "
                             f"> 1, supervision self, hypothesis_temperature 0 and view_search_deg 0 (got "
                             f"{self.doubt_gap}, {self.pose_hypotheses}, {self.supervision!r}, "
                             f"{self.hypothesis_temperature}, {self.view_search_deg})")
        if not 0 <= self.view_search_deg <= 30:  # at 90, the +-2D steps would undo the pose
            raise ValueError(f"view_search_deg must be in [0, 30] degrees, got {self.view_search_deg}")
        if self.true_views_for != "none" and (
                self.supervision != "self" or self.hypothesis_temperature > 0 or self.view_search_deg > 0
                or self.doubt_gap > 0):
            raise ValueError("true_views_for needs supervision self, and hypothesis_temperature, "
                             f"view_search_deg and doubt_gap 0 (got {self.supervision!r}, "
                             f"{self.hypothesis_temperature}, {self.view_search_deg}, {self.doubt_gap})")
        if self.view_search_deg > 0 and (self.supervision != "self" or self.hypothesis_temperature > 0):
            raise ValueError("view_search_deg > 0 needs supervision self and hypothesis_temperature "
                             f"0 (got {self.supervision!r} and {self.hypothesis_temperature})")
        if self.cycle_first_view == "reconstruction" and not (
                self.true_views_for != "none" or self.view_search_deg > 0 or self.view_search_turns > 0):
            raise ValueError("cycle_first_view reconstruction changes nothing without true_views_for "
                             "or a view search (view_search_deg, view_search_turns): the reconstruction "
                             "learns at the pose net's view")
        if self.view_search_turns != 0 and not 2 <= self.view_search_turns <= 12:
            raise ValueError(f"view_search_turns must be 0 (off) or in [2, 12], got {self.view_search_turns}")
        if self.view_search_turns > 0 and (self.supervision != "self" or self.hypothesis_temperature > 0
                                           or self.doubt_gap > 0 or self.true_views_for != "none"):
            raise ValueError("view_search_turns > 0 needs supervision self, and hypothesis_temperature, "
                             f"doubt_gap 0 and true_views_for none (got {self.supervision!r}, "
                             f"{self.hypothesis_temperature}, {self.doubt_gap}, {self.true_views_for!r})")
        if (self.w_cycle_select != 0 or self.hypothesis_choice != "reprojection") and (
                self.pose_hypotheses < 2 or self.supervision != "self"):
            raise ValueError("w_cycle_select and hypothesis_choice need pose_hypotheses > 1 and "
                             f"supervision self (got {self.pose_hypotheses} and {self.supervision!r})")
        if not self.w_cycle_select >= 0:
            raise ValueError(f"w_cycle_select must be >= 0, got {self.w_cycle_select}")
        if self.hypothesis_choice == "selector" and (
                self.w_cycle_select == 0 or self.hypothesis_temperature > 0 or self.doubt_gap > 0):
            raise ValueError("hypothesis_choice selector needs w_cycle_select > 0 (the selector's only "
                             "teacher), and hypothesis_temperature and doubt_gap 0 (got "
                             f"{self.w_cycle_select}, {self.hypothesis_temperature}, {self.doubt_gap})")
        if not 0 <= self.pose_cycle_cut_share <= 1:
            raise ValueError(f"pose_cycle_cut_share must be in [0, 1], got {self.pose_cycle_cut_share}")
        if self.pose_cycle_cut_share > 0 and self.supervision != "self":
            raise ValueError("pose_cycle_cut_share > 0 needs supervision self (the supervised "
                             f"baselines have no pose cycle), got {self.supervision!r}")
        if not 0 <= self.neighbour_view_search_deg <= 90:
            raise ValueError("neighbour_view_search_deg must be in [0, 90] degrees, got "
                             f"{self.neighbour_view_search_deg}")
        if self.neighbour_view_search_deg > 0 and self.supervision != "self":
            raise ValueError("neighbour_view_search_deg > 0 needs supervision self (the supervised "
                             f"baselines take the neighbour's true view), got {self.supervision!r}")
        if not 0 <= self.pose_label_noise_deg <= 90:
            raise ValueError(f"pose_label_noise_deg must be in [0, 90] degrees, got {self.pose_label_noise_deg}")
        if self.pose_label_noise_deg > 0 and self.supervision != "pose":
            raise ValueError(f"pose_label_noise_deg needs supervision pose, got {self.supervision!r}")
        if self.pose_labels and self.supervision != "pose":
            raise ValueError(f"pose_labels needs supervision pose (the labels replace the true "
                             f"viewpoints), got {self.supervision!r}")
        if not 0 < self.pose_label_keep <= 1 or (self.pose_label_keep < 1 and not self.pose_labels):
            raise ValueError(f"pose_label_keep must be in (0, 1], and below 1 only with "
                             f"pose_labels; got {self.pose_label_keep}")
        if self.cuda_graph and (self.cycle_start or self.cycle_warmup):
            raise ValueError("cuda_graph needs a constant cycle weight: set cycle_start and "
                             "cycle_warmup to 0")
        if self.w_view_prior < 0 or self.critic_lr <= 0 or self.critic_r1 < 0:
            raise ValueError(f"w_view_prior and critic_r1 must be >= 0 and critic_lr positive, "
                             f"got {self.w_view_prior}, {self.critic_r1}, {self.critic_lr}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.view_distribution_steps and not self.w_view_distribution:
            raise ValueError("view_distribution_steps needs w_view_distribution > 0 (it says when "
                             "that prior stops)")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0 <= self.shape_code_ramp_steps <= self.steps:
            raise ValueError(f"shape_code_ramp_steps must be in [0, steps = {self.steps}], got "
                             f"{self.shape_code_ramp_steps}")
        if not 0 <= self.lr_decay_steps <= self.steps:
            raise ValueError(f"lr_decay_steps must be in [0, steps = {self.steps}], got {self.lr_decay_steps}")
        if self.carry_optimiser and self.stage == "cc" and not self.init:
            raise ValueError("carry_optimiser needs a run to start from: stage nn, or --init "
                             "with a training-state file (*_last.pt)")
        for name, hint in typing.get_type_hints(type(self)).items():
            value = getattr(self, name)
            if typing.get_origin(hint) is Literal and value not in typing.get_args(hint):
                raise ValueError(f"{name} must be one of {typing.get_args(hint)}, got {value!r}")
        self.network_config()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown} (checkpoint from another version?)")
        return cls(**d)


PRESETS: dict[str, dict] = {
    "paper": {},
    # Same method at a batch that keeps a GPU busy; the step count keeps the paper's 400k samples.
    "fast": {"batch_size": 64, "steps": 6250, "lr": 1e-3},
    # The fast schedule with ssl3d's fixes: the intended loss forms, stray points pulled back to
    # the silhouette and to the cloud, a geometric cycle whose target is fixed (no shape
    # collapse), the reflection-symmetry prior, 8 pose hypotheses (no symmetric-pose minima) and
    # the adversarial view prior (no flat camera-facing sheets) with an R1-penalised critic (no
    # pose collapse on unlucky seeds) (README, Results).
    "ssl3d": {"batch_size": 64, "steps": 6250, "lr": 1e-3, "affinity_form": "intended",
              "bce_form": "intended", "azimuth_error": "wrapped", "w_point_silhouette": 0.1,
              "cycle_gradient": "stop_target", "w_symmetry": 1000.0, "pose_hypotheses": 8,
              "w_outlier": 1e4, "w_view_prior": 10.0, "critic_r1": 1.0},
}
"""Preset name -> field overrides applied on top of the defaults (command-line flags win)."""

# Fields that change the networks' shapes or what their outputs mean: a checkpoint must agree
# on them to be loaded.
ARCHITECTURE_FIELDS = ("image_size", "n_points", "hidden", "pose_hidden", "activation",
                       "pose_hypotheses", "pose_sectors", "pose_input_blur", "mirror_points",
                       "shape_code_dims")
