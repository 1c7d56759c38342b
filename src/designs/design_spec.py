"""Experiment designs: a YAML under configs/design/ expanded into one run per (arm, seed).

A design has a base experiment (overrides shared by every transformer arm), a control arm, seeds, and
arms from an explicit list, a full grid and/or a random search (sampled with Optuna) over any keys.
An arm is a list of overrides (a training run), `{baseline: tfidf_nb}` (a classical control) or
`{fusion: <method>, members: [arms]}` (model fusion of other arms' runs, evaluated like one model).
"""

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.config import CONFIG_DIR, available, compose
from src.designs.baselines import build_baseline
from src.designs.fusion import FUSIONS
from src.designs.launchers import LauncherSettings, check_settings
from src.errors import ConfigError
from src.reporting.stats import TESTS, metric_fn
from src.rundir import is_finished
from src.validation import require, require_choice

DESIGN_DIR = CONFIG_DIR / "design"
RESULTS_ROOT = Path("results")
ARM_KINDS = ("train", "baseline", "fusion")
ARM_REF = re.compile(r"\{arm:([\w.-]+)\}")  # in an override: the run dir of that arm at the same seed


BEST_ARM = "tpe_best"  # the arm of a TPE search's best trial


@dataclass
class TpeSchema:
    """`tpe:` of a design: an Optuna TPE search on validation whose best trial becomes the arm `tpe_best`."""

    params: dict[str, Any] = field(default_factory=dict)  # key -> [choices] | {low, high, log}, as in `random:`
    n_trials: int = 20  # trials to finish (complete or pruned) over all workers
    seed: int = 0  # the TPESampler's seed (worker k of a parallel search: seed + k)
    n_startup_trials: int = 10  # random trials before TPE models the results
    train_seed: int = 0  # the seed every trial trains with; not one of `seeds`, on which `tpe_best` is tested
    storage: str | None = None  # an Optuna storage URL; null: sqlite:///<results>/<design>/search/optuna.db
    prune: bool = True  # prune trials on their validation curve (MedianPruner)
    prune_startup_trials: int = 2  # trials that finish before any is pruned
    prune_warmup_steps: int = 0  # optimizer steps of a trial before it may be pruned
    heartbeat_s: int = 60  # a trial silent for 2 heartbeats (its worker died) is retried from its checkpoint


@dataclass
class DesignSchema:
    """What a design YAML may contain (unknown keys fail fast)."""

    description: str = ""
    base: list[str] = field(default_factory=list)  # overrides shared by every training arm
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    control: str = "control"  # the arm every other arm is compared with
    metric: str = "test/f1_macro"  # primary metric: plots, tests, Holm correction
    selection_metric: str = "val/f1_macro"  # what choices (best arm, baseline settings) are made on
    primary_test: str = "t"  # the decisive test vs the control: t | wilcoxon | permutation | aso
    alpha: float = 0.05  # family-wise significance level of the primary test (Holm over the arms)
    deviations: list[str] = field(default_factory=list)  # where the recipe departs from what validation chose, why
    arms: dict[str, Any] = field(default_factory=dict)  # name -> overrides | {baseline: ...} | {fusion: ...}
    grid: dict[str, list[Any]] = field(default_factory=dict)  # key -> values: one arm per combination
    random: dict[str, Any] | None = None  # {n_trials, seed, params: {key: [choices] | {low, high, log}}}
    tpe: TpeSchema | None = None  # an adaptive search (src/designs/search.py)
    launcher: LauncherSettings = field(default_factory=LauncherSettings)  # where the training runs execute


@dataclass(frozen=True)
class Arm:
    """One arm: how its runs are produced."""

    name: str
    kind: str  # train | baseline | fusion
    overrides: tuple[str, ...] = ()
    baseline: str | None = None
    fusion: str | None = None
    members: tuple[str, ...] = ()
    args: tuple[tuple[str, Any], ...] = ()  # baseline parameters (scikit-learn Pipeline names)
    select: tuple[tuple[str, list[Any]], ...] = ()  # baseline grid, chosen on validation: param -> values

    def record(self) -> dict[str, Any]:
        """Plain data (for results/<design>/design.yaml, read back without configs/)."""
        return {
            "kind": self.kind,
            "overrides": list(self.overrides),
            "baseline": self.baseline,
            "fusion": self.fusion,
            "members": list(self.members),
            "args": dict(self.args),
            "select": dict(self.select),
        }

    @property
    def needs(self) -> list[str]:
        """Arms whose run (same seed) this arm's overrides use through `{arm:NAME}` (e.g. a teacher)."""
        return [m for o in self.overrides for m in ARM_REF.findall(o)]


@dataclass(frozen=True)
class RunSpec:
    """One run of a design: an arm at one seed, written to results/<design>/runs/<arm>/seed<k>."""

    design: str
    arm: Arm
    seed: int
    run_dir: Path

    @property
    def done(self) -> bool:
        return is_finished(self.run_dir)

    def train_overrides(self, base: list[str]) -> list[str]:
        """The full override list of a training run: base, arm, seed, run dir and W&B grouping."""
        return [
            *base,
            *(
                ARM_REF.sub(lambda m: str(self.run_dir.parent.parent / m[1] / self.run_dir.name), o)
                for o in self.arm.overrides
            ),
            f"seed={self.seed}",
            f"run_dir={self.run_dir}",
            f"logger.wandb.group={self.design}",
            f"logger.wandb.job_type={self.arm.name}",
        ]


@dataclass
class Design:
    """A loaded design: its arms in run order (trained, then baselines, then fusions) and seeds."""

    name: str
    spec: DesignSchema
    arms: dict[str, Arm]
    results_dir: Path

    @property
    def control(self) -> str:
        return self.spec.control

    @property
    def metric(self) -> str:
        return self.spec.metric

    def runs(self) -> list[RunSpec]:
        """Every (arm, seed) run; arms that use other arms' runs (fusion, `{arm:NAME}`) come after them."""
        order = sorted(self.arms.values(), key=lambda a: (ARM_KINDS.index(a.kind), bool(a.needs)))
        return [self.run_of(arm.name, seed) for arm in order for seed in self.spec.seeds]

    def run_of(self, arm: str, seed: int) -> RunSpec:
        return RunSpec(self.name, self.arms[arm], seed, self.results_dir / "runs" / arm / f"seed{seed}")

    def compose_run(self, run: RunSpec, extra: Sequence[str] = ()) -> DictConfig:
        """The training config of a run (baselines and fusions use the base config for their data)."""
        overrides = (
            run.train_overrides(list(self.spec.base))
            if run.arm.kind == "train"
            else [*self.spec.base, f"seed={run.seed}", f"run_dir={run.run_dir}"]
        )
        return compose([*overrides, *extra])

    def check_configs(self) -> None:
        """Compose one run of every arm, so a bad override fails before any run starts.

        Arms that need another arm's run (a teacher checkpoint) are checked once that run exists."""
        for run in self.runs()[:: len(self.spec.seeds)]:
            if any(not self.run_of(name, run.seed).done for name in run.arm.needs):
                continue
            try:
                self.compose_run(run)
            except ConfigError as err:
                raise ConfigError(f"Design '{self.name}', arm '{run.arm.name}': {err}") from None


def load_design(name_or_path: str | Path, results_root: Path = RESULTS_ROOT, launcher: Sequence[str] = ()
                ) -> Design:
    """Load configs/design/<name>.yaml (or a path), check it and expand grid / random arms.

    `launcher` holds `launcher.<key>=<value>` overrides of where the runs execute (command-line options)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = DESIGN_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"Unknown design '{name_or_path}'. Available: {', '.join(available('design'))}.")
    try:
        spec = OmegaConf.to_object(OmegaConf.merge(
            OmegaConf.structured(DesignSchema), OmegaConf.load(path), OmegaConf.from_dotlist(list(launcher))
        ))
    except OmegaConfBaseException as err:
        where = f"{path} (or a launcher option)" if launcher else str(path)
        raise ConfigError(f"Bad design {where}: '{err.full_key}': {err.msg.splitlines()[0]}") from None
    arms = {name: parse_arm(name, value) for name, value in spec.arms.items()}
    arms.update(grid_arms(spec.grid))
    if spec.random:
        arms.update(random_arms(spec.random))
    _check(spec, arms)
    return Design(path.stem, spec, arms, results_root / path.stem)


def parse_arm(name: str, value: Any) -> Arm:
    """An arm from its YAML: a list of overrides, or a mapping with `baseline` or `fusion`."""
    if value is None or isinstance(value, list):
        return Arm(name, "train", tuple(str(v) for v in value or ()))
    if not isinstance(value, dict):
        raise ConfigError(f"Bad arm '{name}': give a list of overrides, {{baseline: ...}} or {{fusion: ...}}.")
    args = tuple(sorted(dict(value.get("args") or {}).items()))
    select = dict(value.get("select") or {})  # Pipeline parameter -> candidate values, chosen on validation
    if select and "baseline" not in value:
        raise ConfigError(f"arms.{name}.select: only a baseline arm chooses parameters on validation.")
    if any(not isinstance(values, list) or not values for values in select.values()):
        raise ConfigError(f"Bad arms.{name}.select: map Pipeline parameters to lists, e.g. {{clf__C: [1, 4]}}.")
    if "baseline" in value:
        build_baseline(value["baseline"], {**dict(args), **{k: v[0] for k, v in select.items()}})  # typos fail now
        return Arm(name, "baseline", baseline=value["baseline"], args=args, select=tuple(sorted(select.items())))
    if "fusion" in value:
        return Arm(name, "fusion", fusion=value["fusion"], members=tuple(value.get("members") or ()))
    raise ConfigError(f"Arm '{name}' needs `baseline:` or `fusion:` (or a plain list of overrides).")


def grid_arms(grid: dict[str, list[Any]]) -> dict[str, Arm]:
    """One training arm per combination of the grid's values, named after its values."""
    keys = list(grid)
    if not keys:
        return {}
    arms = {}
    for values in itertools.product(*(grid[k] for k in keys)):
        overrides = tuple(f"{k}={v}" for k, v in zip(keys, values, strict=True))
        name = "_".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(keys, values, strict=True))
        arms[name] = Arm(name, "train", overrides)
    return arms


def distributions_of(params: dict[str, Any], where: str) -> dict[str, optuna.distributions.BaseDistribution]:
    """The Optuna distribution of every searched key (`where`: the design key they are under, for errors)."""
    return {key: _distribution(f"{where}.{key}", spec) for key, spec in params.items()}


def _distribution(key: str, spec: Any) -> optuna.distributions.BaseDistribution:
    """An Optuna distribution from `[choices]` or `{low, high, log}` (ints give an integer range)."""
    if isinstance(spec, list):
        return optuna.distributions.CategoricalDistribution(spec)
    if isinstance(spec, dict) and {"low", "high"} <= set(spec):
        if isinstance(spec["low"], int) and isinstance(spec["high"], int):
            return optuna.distributions.IntDistribution(spec["low"], spec["high"], log=spec.get("log", False))
        return optuna.distributions.FloatDistribution(
            float(spec["low"]), float(spec["high"]), log=spec.get("log", False)
        )
    raise ConfigError(f"Bad {key}: give a list of choices or {{low, high, log}}.")


def random_arms(random: dict[str, Any]) -> dict[str, Arm]:
    """`n_trials` arms sampled with Optuna's seeded RandomSampler (the same arms on every load)."""
    params = dict(random.get("params") or {})
    require(bool(params), "random.params", "name at least one key to sample")
    distributions = distributions_of(params, "random.params")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=random.get("seed", 0)))
    arms = {}
    for index in range(int(random.get("n_trials", 4))):
        trial = study.ask(distributions)
        name = f"trial{index:02d}"
        arms[name] = Arm(name, "train", tuple(f"{k}={v}" for k, v in trial.params.items()))
    return arms


def _check(spec: DesignSchema, arms: dict[str, Arm]) -> None:
    """Control exists, seeds are unique, fusion members exist, and baselines/fusions are registered."""

    require(bool(arms), "arms", "a design needs at least one arm")
    require_choice("control", spec.control, list(arms))
    require(len(set(spec.seeds)) == len(spec.seeds) > 0, "seeds", "give one or more distinct seeds")
    metric_fn(spec.metric)
    metric_fn(spec.selection_metric)
    require(spec.selection_metric.startswith("val/"), "selection_metric",
            "choices are made on validation: name a val/ metric such as val/f1_macro")
    require_choice("primary_test", spec.primary_test, TESTS)
    check_settings(spec.launcher)
    if spec.tpe:
        _check_tpe(spec.tpe, spec.seeds, arms)
    require(0.0 < spec.alpha < 1.0, "alpha", "must be in (0, 1)")
    for arm in arms.values():
        for name in arm.needs:
            require(
                name in arms and arms[name].kind == "train" and not arms[name].needs,
                f"arms.{arm.name}",
                f"{{arm:{name}}} must name a training arm that needs no other arm",
            )
        if arm.kind == "baseline":
            build_baseline(arm.baseline, dict(arm.args))
        if arm.kind == "fusion":
            FUSIONS.check(arm.fusion, key=f"arms.{arm.name}.fusion")
            require(len(arm.members) >= 2, f"arms.{arm.name}.members", "fuse at least two arms")
            for member in arm.members:
                require(
                    member in arms and arms[member].kind == "train",
                    f"arms.{arm.name}.members",
                    f"'{member}' is not a training arm of this design",
                )


def _check_tpe(tpe: TpeSchema, seeds: list[int], arms: dict[str, Arm]) -> None:
    """A TPE search samples known distributions, tunes on a seed the final runs do not use, and adds `tpe_best`."""
    require(bool(tpe.params), "tpe.params", "name at least one key to search")
    distributions_of(tpe.params, "tpe.params")
    require(tpe.n_trials >= 1, "tpe.n_trials", "run at least one trial")
    require(tpe.train_seed not in seeds, "tpe.train_seed",
            f"the trials' seed must not be one of `seeds` {seeds}: the best trial is compared on seeds it was not "
            "tuned on")
    require(BEST_ARM not in arms, f"arms.{BEST_ARM}", "this name is the TPE search's best trial: rename the arm")
