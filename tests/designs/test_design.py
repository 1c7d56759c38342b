"""Design loading: shipped designs compose, grid / Optuna random expansion, arm references, clear errors."""

from pathlib import Path

import pytest

from src.config import available
from src.designs.design_spec import load_design
from src.errors import ConfigError

SHIPPED = [
    "augmentation",
    "balancing",
    "compression",
    "default_recipe",
    "fusion",
    "imdb_full",
    "optimizers",
    "optimizers_lr",
    "precision",
    "schedules",
    "tiny",
    "tiny_fusion",
    "tiny_tpe",
    "transfer_modes",
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "d.yaml"
    path.write_text(text)
    return path


def test_every_shipped_design_is_listed_and_every_arm_composes() -> None:
    assert sorted(available("design")) == SHIPPED
    for name in SHIPPED:
        design = load_design(name)
        design.check_configs()
        assert design.control in design.arms
        assert len(design.runs()) == len(design.arms) * len(design.spec.seeds)


def test_run_layout_and_wandb_grouping() -> None:
    design = load_design("optimizers", results_root=Path("out"))
    run = next(r for r in design.runs() if r.arm.name == "sgd" and r.seed == 2)
    assert run.run_dir == Path("out/optimizers/runs/sgd/seed2")
    overrides = run.train_overrides(list(design.spec.base))
    assert overrides[-4:] == [
        "seed=2",
        "run_dir=out/optimizers/runs/sgd/seed2",
        "logger.wandb.group=optimizers",
        "logger.wandb.job_type=sgd",
    ]
    cfg = design.compose_run(run)
    assert cfg.model.optimizer._target_ == "torch.optim.SGD" and cfg.model.optimizer.lr == 5e-2 and cfg.seed == 2
    assert [r.arm.kind for r in design.runs()][-4:] == ["baseline"] * 4


def test_grid_makes_one_arm_per_combination(tmp_path: Path) -> None:
    design = load_design(
        _write(
            tmp_path,
            """
base: [experiment=imdb_tiny]
seeds: [1]
control: lr=0.001_batch_size=16
grid: {model.optimizer.lr: [0.001, 0.01], data.batch_size: [16, 32]}
""",
        )
    )
    assert sorted(design.arms) == [
        "lr=0.001_batch_size=16",
        "lr=0.001_batch_size=32",
        "lr=0.01_batch_size=16",
        "lr=0.01_batch_size=32",
    ]
    assert design.arms["lr=0.01_batch_size=32"].overrides == ("model.optimizer.lr=0.01", "data.batch_size=32")
    design.check_configs()


def test_random_search_is_seeded_optuna_sampling(tmp_path: Path) -> None:
    text = """
base: [experiment=imdb_tiny]
seeds: [1]
control: trial00
random:
  n_trials: 5
  seed: 3
  params:
    model.optimizer.lr: {low: 1.0e-5, high: 1.0e-3, log: true}
    data.batch_size: [8, 16]
    model.finetune.frozen_layers: {low: 0, high: 2}
"""
    first, second = load_design(_write(tmp_path, text)), load_design(_write(tmp_path, text))
    assert list(first.arms) == [f"trial{i:02d}" for i in range(5)]
    assert first.arms == second.arms  # the same arms on every load: a design resumes
    for arm in first.arms.values():
        values = dict(o.split("=") for o in arm.overrides)
        assert 1e-5 <= float(values["model.optimizer.lr"]) <= 1e-3
        assert values["data.batch_size"] in ("8", "16") and values["model.finetune.frozen_layers"] in "012"
    first.check_configs()


def test_arm_reference_points_at_the_same_seed_and_runs_after(tmp_path: Path) -> None:
    design = load_design("compression", results_root=tmp_path)
    run = design.run_of("distilled", 2)
    teacher = [o for o in run.train_overrides([]) if o.startswith("model.distillation")][0]
    assert teacher == f"model.distillation.teacher_ckpt={tmp_path}/compression/runs/fp32/seed2/checkpoints/last.ckpt"
    order = [r.arm.name for r in design.runs()]
    assert order.index("distilled") > order.index("fp32")
    design.check_configs()  # skipped while the teacher run does not exist; checked once it does


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("arms: {a: []}\ncontrol: b", "control"),
        (
            "arms: {a: [], f: {fusion: soup, members: [a, nb]}, nb: {baseline: tfidf_nb}}\ncontrol: a",
            "members",
        ),
        ("arms: {a: [], f: {fusion: blend, members: [a, a]}}\ncontrol: a", "Unknown fusion method 'blend'"),
        ("arms: {a: [], nb: {baseline: svm}}\ncontrol: a", "Unknown baseline 'svm'"),
        ("arms: {a: 3}\ncontrol: a", "list of overrides"),
        ("arms: {a: []}\ncontrol: a\nrepeats: 3", "repeats"),
        ("arms: {a: []}\ncontrol: a\nmetric: test/bleu", "test/bleu"),
        ("arms: {a: [], nb: {baseline: tfidf_nb, args: {C: 1}}}\ncontrol: a", "clf__C"),
        ("arms: {a: ['model.distillation.teacher_ckpt={arm:b}/x.ckpt']}\ncontrol: a", "arm:b"),
        ("arms: {a: [optimizer=adamx]}\ncontrol: a\nbase: [experiment=imdb_tiny]", "arm 'a'.*adamx"),
    ],
)
def test_bad_designs_fail_with_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_design(_write(tmp_path, text)).check_configs()


def test_unknown_design_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="optimizers"):
        load_design("nope")
