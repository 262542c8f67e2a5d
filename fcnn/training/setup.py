"""Setting a run up: from a config (or a run's last.npz) to the objects the loop needs.

:func:`build` prepares the data, the network, the schedule and optimizer, the random keys
and the run folder, or restores all of them from a resumable checkpoint (with the config
stored in it; :mod:`fcnn.training.run_config`). Nothing here runs a training step.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import yaml

from fcnn import checkpoint, distributed, layers, models, optim, tree
from fcnn import random as fr
from fcnn.data.transforms import Augmentation, normalize
from fcnn.io import atomic_write_text
from fcnn.layers import Layer
from fcnn.layers.combinators import split
from fcnn.optim import schedules
from fcnn.training import finetune, outputs
from fcnn.training.config import Config, ConfigError, TrainConfig, WhiteningConfig
from fcnn.training.data import PreparedData, class_weights, prepare_data
from fcnn.training.loop import FrozenPrefix, Recipe
from fcnn.training.run_config import resumed_config
from fcnn.whitening import patch_whitening

__all__ = [
    "PROGRESS",
    "LoopState",
    "Setup",
    "build",
    "make_optimizer",
    "make_schedule",
    "network_for",
]


def _shape_mismatch(
    config: Config, model_shape: tuple[int, ...], data_shape: tuple[int, ...]
) -> str:
    """The error for a model whose input shape is not the data's, with the config keys to change."""
    fixes = []
    # the image_size option makes square inputs of the model's channel count
    fits = model_shape[0] == data_shape[0] and data_shape[1] == data_shape[2]
    if fits and isinstance(config.model, str) and models.takes_option(config.model, "image_size"):
        fixes.append(f"model_options: {{image_size: {data_shape[1]}}}")
    if config.dataset == "ham10000":  # the one data set resized on loading
        fixes.append(f"data.image_size: [{model_shape[1]}, {model_shape[2]}]")
    advice = f"; set {' or '.join(fixes)} in the config" if fixes else ""
    return (
        f"model {config.model_name} expects images of shape {model_shape} but "
        f"{config.dataset} has {data_shape}{advice}"
    )


def network_for(config: Config, class_names: tuple[str, ...], image_shape: tuple[int, ...]):
    """The config's network as a :class:`fcnn.models.Preset` for ``class_names`` and images of
    ``image_shape`` (C, H, W), built and checked: its input shape is the images' and it
    gives one value per class; a ConfigError says what to change otherwise."""
    try:
        if isinstance(config.model, dict):
            preset = models.from_spec(config.model, image_shape)
        else:
            preset = models.get(config.model, num_classes=len(class_names), **config.model_options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model: {exc}") from None
    input_shape = tuple(image_shape if preset.input_shape is None else preset.input_shape)
    preset = attrs.evolve(preset, input_shape=input_shape)
    if input_shape != tuple(image_shape):
        raise ConfigError(_shape_mismatch(config, input_shape, image_shape))
    try:
        out_shape, _, _ = preset.network.init(fr.key(0), input_shape)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"model: the network cannot take images of shape {tuple(image_shape)}: {exc}"
        ) from None
    if tuple(out_shape) != (len(class_names),):
        raise ConfigError(
            f"model: the network's output has shape {tuple(out_shape)}, but the data has "
            f"{len(class_names)} classes ({', '.join(class_names[:10])}): its last layer must "
            f"give {len(class_names)} values per image"
        )
    return preset


def make_schedule(cfg: TrainConfig, steps_per_epoch: int) -> schedules.Schedule:
    """The config's schedule in optimizer steps (epochs converted with ``steps_per_epoch``)."""
    sc = cfg.scheduler
    warm = round(sc.warmup_epochs * steps_per_epoch)
    total = max(1, cfg.epochs * steps_per_epoch - warm)
    if sc.name == "constant":
        sched = schedules.constant(cfg.lr)
    elif sc.name == "step":
        sched = schedules.step_decay(cfg.lr, sc.step_size * steps_per_epoch, sc.gamma)
    elif sc.name == "exponential":
        sched = schedules.exponential(cfg.lr, sc.gamma, steps_per_epoch)
    elif sc.name == "piecewise":
        sched = schedules.piecewise_linear(cfg.lr, total, sc.points)
    else:
        sched = schedules.cosine(cfg.lr, total, sc.final_lr)
    return schedules.warmup(sched, warm) if warm else sched


def _named_optimizer(
    cfg: TrainConfig, schedule: schedules.Schedule, weight_decay: float, clip_norm: float | None
) -> optim.GradientTransformation:
    if cfg.optimizer == "sgd":
        return optim.sgd(schedule, cfg.momentum, cfg.nesterov, weight_decay, clip_norm)
    b1, b2 = cfg.betas
    maker = optim.adam if cfg.optimizer == "adam" else optim.adamw
    return maker(schedule, b1, b2, weight_decay=weight_decay, clip_norm=clip_norm)


def make_optimizer(
    cfg: TrainConfig,
    schedule: schedules.Schedule,
    params: Any = None,
    steps_per_epoch: int = 1,
    frozen: Any = None,
) -> optim.GradientTransformation:
    """The optimizer the ``train:`` section names (sgd, adam, adamw) with its momentum,
    betas, weight decay and clipping, stepping at ``schedule``'s learning rate; the leaves
    that ``frozen`` (a tree of bools like the params, or None) marks never move. With
    ``train.param_groups`` (which need ``params``, to label their leaves by path) each group
    gets the same optimizer at its own rate and decay, in one
    :func:`fcnn.optim.multi_transform` after the global clipping."""
    if not cfg.param_groups:
        named = _named_optimizer(cfg, schedule, cfg.weight_decay, cfg.clip_norm)
        return named if frozen is None else optim.freeze(named, frozen)
    assert params is not None  # param groups label the params' leaves
    try:
        labels = optim.groups.labels(params, [g.match for g in cfg.param_groups])
    except ValueError as exc:
        raise ConfigError(f"train.param_groups: {exc}") from None
    if frozen is not None:  # frozen leaves: their own group, which never moves
        labels = tree.map(lambda label, f: "frozen" if f else label, labels, frozen)
    parts = {
        optim.groups.DEFAULT: _named_optimizer(cfg, schedule, cfg.weight_decay, None),
        "frozen": optim.set_to_zero(),
    }
    for i, group in enumerate(cfg.param_groups):
        rate = optim.groups.scaled(schedule, group.lr_scale)
        if group.epochs is not None:
            rate = optim.groups.until(rate, round(group.epochs * steps_per_epoch))
        decay = cfg.weight_decay * group.weight_decay_scale
        parts[f"group{i}"] = _named_optimizer(cfg, rate, decay, None)
    grouped = optim.multi_transform(parts, labels)
    if cfg.clip_norm is None:
        return grouped
    return optim.chain(optim.clip_by_global_norm(cfg.clip_norm), grouped)


def _init_from(path: str, params: Any, state: Any) -> tuple[Any, Any, list[str]]:
    """``params`` and ``state`` with every leaf the checkpoint at ``path`` holds at the same
    tree path and shape (:func:`fcnn.training.finetune.load_matching`), and lines for the log:
    one summary, then each leaf that kept its initialization and why."""
    try:
        source = checkpoint.load(path)
        params, state, loaded, kept = finetune.load_matching(params, state, source)
    except ValueError as exc:  # CheckpointError is one
        raise ConfigError(f"train.init_from: {exc}") from None
    lines = [
        f"train.init_from {path}: loaded {len(loaded)} of {len(loaded) + len(kept)} arrays "
        f"(params and state){'; initialized fresh:' if kept else ''}"
    ]
    return params, state, lines + [f"  {line}" for line in kept]


def _whiten(
    cfg: WhiteningConfig, net: Layer, params: Any, data: PreparedData
) -> tuple[Any, str]:
    """``params`` with layer ``cfg.layer``'s filters set to the whitening of the first
    ``cfg.images`` training images' patches (:func:`fcnn.whitening.patch_whitening`), and
    the log's line."""
    where = f"whitening.layer {cfg.layer}"
    layer_spec = net.spec["layers"][cfg.layer] if net.name == "serial" else None
    if layer_spec is None or cfg.layer >= len(params) or layer_spec["type"] != "Conv2D":
        raise ConfigError(f"{where}: the network's layer {cfg.layer} must be a Conv2D")
    conv = params[cfg.layer]
    c_out, c_in, kh, kw = conv.w.shape
    if c_out != 2 * c_in * kh * kw or conv.stride != (1, 1) or conv.padding != (0, 0):
        raise ConfigError(
            f"{where}: a whitening convolution has 2·C·KH·KW = {2 * c_in * kh * kw} outputs, "
            f"stride 1 and no padding; layer {cfg.layer} has {c_out} outputs, stride "
            f"{conv.stride} and padding {conv.padding}"
        )
    images = normalize(data.train.images[: cfg.images], data.normalization)
    filters = patch_whitening(images, (kh, kw), cfg.eps).astype(conv.w.dtype)
    whitened = attrs.evolve(conv, w=filters)
    params = (*params[: cfg.layer], whitened, *params[cfg.layer + 1 :])
    line = (
        f"whitening: layer {cfg.layer}'s {c_out} filters from the {kh}×{kw} patches of "
        f"{len(images)} training images (eps {cfg.eps})"
    )
    return params, line


def _frozen_mask(params: Any, freeze: tuple[int | str, ...]) -> Any:
    """The tree of bools marking the leaves ``train.freeze`` holds fixed."""
    try:
        return finetune.frozen_mask(params, freeze)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _frozen_prefix(recipe: Recipe, params: Any, mask: Any) -> Recipe:
    """``recipe`` whose step runs a wholly frozen first part of the network forward-only."""
    count = finetune.frozen_prefix(params, mask) if recipe.net.name == "serial" else 0
    if not count:
        return recipe
    prefix, rest = split(recipe.net, count)
    return attrs.evolve(recipe, frozen=FrozenPrefix(count, layers.fuse(prefix), layers.fuse(rest)))


def new_run_dir(config: Config) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(config.runs_dir) / f"{stamp}-{config.name or config.model_name}"
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    run_dir.mkdir(parents=True)
    return run_dir


@attrs.frozen(eq=False)
class Setup:
    """Everything a run fixes before its first step."""

    config: Config
    data: PreparedData
    recipe: Recipe
    steps_per_epoch: int
    schedule: schedules.Schedule  # learning rate per optimizer step (logged per epoch)
    order_key: fr.Key
    step_key: fr.Key
    manifest: checkpoint.ModelManifest
    run_dir: Path

    @property
    def flip_key(self) -> fr.Key:
        """The key of ``alternating_flip``'s first-epoch half (from the seed, like the rest)."""
        return fr.fold_in(fr.key(self.config.seed), 3)

    @property
    def total_steps(self) -> int:
        return self.config.train.epochs * self.steps_per_epoch

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.npz"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.npz"


# the loop's position and running sums, as last.npz stores them (ResumeState.progress)
PROGRESS = ("epoch", "batch", "loss_sum", "correct", "seen")


@attrs.frozen(eq=False, kw_only=True)
class LoopState:
    """The evolving part of a run, replaced (never mutated) after every step; built by
    keyword only. :meth:`progress` and :meth:`resumed` are the one pair that saves and
    restores its position through ``last.npz``."""

    params: Any
    state: Any
    opt_state: Any
    epoch: int = 0
    batch: int = 0  # next batch to run within ``epoch``
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    # (params, state) averaged over the steps when train.ema_decay is set, else None
    ema: Any = None
    # the slow (params, state) of train.lookahead, else None
    slow: Any = None

    @property
    def evaluated(self) -> tuple[Any, Any]:
        """The weights a run validates, keeps and ships: the average when there is one."""
        return self.ema if self.ema is not None else (self.params, self.state)

    def progress(self) -> dict[str, int | float]:
        """The position and running sums, as plain numbers for ``last.npz``."""
        return {name: getattr(self, name) for name in PROGRESS}

    def resumed(self, progress: dict[str, Any]) -> LoopState:
        """This state at a saved :meth:`progress`; CheckpointError for anything but exactly
        those keys with non-negative counts and a finite sum."""
        if not isinstance(progress, dict) or set(progress) != set(PROGRESS):
            raise checkpoint.CheckpointError(
                f"the saved training progress must hold exactly {', '.join(PROGRESS)}"
            )
        counts = [progress[k] for k in PROGRESS if k != "loss_sum"]
        loss_sum = progress["loss_sum"]
        if not all(type(c) is int and c >= 0 for c in counts) or not (
            isinstance(loss_sum, (int, float)) and math.isfinite(loss_sum)
        ):
            raise checkpoint.CheckpointError("the saved training progress holds bad numbers")
        return attrs.evolve(self, **{**progress, "loss_sum": float(loss_sum)})


def build(
    config: Config | None,
    data_dir,
    resume,
    replicas: distributed.Replicas,
    typed_outputs: Sequence[str] = (),
) -> tuple[Config, Setup, LoopState, checkpoint.ResumeState | None, list[str]]:
    """Everything a run needs, new or resumed (``typed_outputs``: the paths outside the run
    folder that the user gave again for a resumed run to write, :mod:`.outputs`)."""
    resumed = checkpoint.load(resume) if resume is not None else None
    saved, notes, config_changed = None, [], False
    if resumed is not None:
        assert resume is not None
        info = resumed.info
        if not info.resumable or info.training is None or info.config is None:
            raise checkpoint.CheckpointError(
                f"{resume} is not resumable (it has no training progress); resume from a "
                "run's last.npz"
            )
        saved = info.training
        config, notes = resumed_config(info.config, config, saved.epoch)
        notes = [f"resumed: {note}" for note in notes]
        config_changed = bool(notes)
        run_dir = Path(resume).resolve().parent
        config, refused = outputs.confine(config, run_dir, frozenset(typed_outputs))
        notes += refused
    elif config is None:
        raise ValueError("train needs a config, or resume= a run's last.npz")

    # rank 0 downloads or decodes into the cache first; the others then read the cache
    data = prepare_data(config, data_dir) if replicas.rank == 0 else None
    replicas.barrier()
    data = data or prepare_data(config, data_dir)
    preset = network_for(config, data.train.class_names, data.train.image_shape)
    net, input_shape = preset.network, preset.input_shape
    assert input_shape is not None  # network_for sets it
    steps_per_epoch = math.ceil(len(data.train) / config.train.batch_size)
    schedule = make_schedule(config.train, steps_per_epoch)
    k_init, k_order, k_steps = fr.split(fr.fold_in(fr.key(config.seed), 2), 3)
    _, params, state = net.init(k_init, input_shape)
    if config.whitening is not None and resumed is None:
        params, line = _whiten(config.whitening, net, params, data)
        notes.append(line)
    if config.train.init_from is not None and resumed is None:
        params, state, lines = _init_from(config.train.init_from, params, state)
        notes += lines
    mask = _frozen_mask(params, config.train.freeze) if config.train.freeze else None
    recipe = Recipe(
        layers.fuse(net),  # the fusion pass: the same numbers with fewer passes over memory
        make_optimizer(config.train, schedule, params, steps_per_epoch, frozen=mask),
        data.normalization,
        Augmentation(**attrs.asdict(config.data.augment)),
        class_weights(config, data.train),
        config.train.label_smoothing,
        config.train.sync_batchnorm,
    )
    if mask is not None:
        recipe = _frozen_prefix(recipe, params, mask)
        notes.append(
            f"train.freeze {list(config.train.freeze)}: {sum(tree.leaves(mask))} of "
            f"{len(tree.leaves(mask))} parameter arrays held fixed"
            + (f", layers 0-{recipe.frozen.count - 1} run forward-only" if recipe.frozen else "")
        )
    ema = (params, state) if config.train.ema_decay is not None else None
    slow = (params, state) if config.train.lookahead is not None else None
    loop = LoopState(
        params=params, state=state, opt_state=recipe.optimizer.init(params), ema=ema, slow=slow
    )
    manifest = checkpoint.ModelManifest(
        architecture=net.spec,
        model=config.model_name,
        input_shape=tuple(input_shape),
        class_names=tuple(data.train.class_names),
        dataset=config.dataset,
        normalization=data.normalization.to_dict(),
        config=config.to_dict(),
        # chosen in the config, not fitted: every checkpoint of the run carries them
        answer_rules=config.answer_rules and config.answer_rules.to_dict(),
        data_root=str(Path(data.root).resolve()) if data.root is not None else None,
    )
    if resumed is not None:
        assert resume is not None and saved is not None  # set together, above
        # the stored spec rebuilt: hyperparameters added since it was written take defaults
        stored = resumed.info.architecture
        if stored is None or layers.from_spec(stored).spec != net.spec:
            raise checkpoint.CheckpointError(f"{resume} was trained with another architecture")
        if ema is not None:
            ema = (
                checkpoint.fill(params, resumed.group("ema_params"), "averaged params"),
                checkpoint.fill(state, resumed.group("ema_state"), "averaged state"),
            )
        if slow is not None:
            slow = (
                checkpoint.fill(params, resumed.group("slow_params"), "lookahead params"),
                checkpoint.fill(state, resumed.group("slow_state"), "lookahead state"),
            )
        loop = LoopState(
            params=checkpoint.fill(params, resumed.group("params"), "params"),
            state=checkpoint.fill(state, resumed.group("state"), "state"),
            opt_state=checkpoint.fill(
                loop.opt_state, resumed.group("opt_state"), "optimizer state"
            ),
            ema=ema,
            slow=slow,
        ).resumed(saved.progress)
        run_dir = Path(resume).resolve().parent  # wherever the run folder has been moved
        if replicas.rank == 0 and config_changed:  # the run's folder says so
            atomic_write_text(
                run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False)
            )
    elif replicas.rank == 0:
        run_dir = new_run_dir(config)
        atomic_write_text(
            run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False)
        )
    else:
        run_dir = Path()  # replaced by rank 0's folder just below
    run_dir = Path(replicas.broadcast(str(run_dir)))
    setup = Setup(
        config, data, recipe, steps_per_epoch, schedule, k_order, k_steps, manifest, run_dir
    )
    return config, setup, loop, saved, notes
