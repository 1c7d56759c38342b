"""Config composition: every shipped experiment composes; typos and bad choices fail with the key named."""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from src.builders import check_buildable
from src.config import available, compose, to_yaml
from src.errors import ConfigError
from src.validation import monitorable_metrics


def fake_finished_run(root: Path, experiment: str) -> Path:
    """A run directory with metrics.json and last.ckpt, as `${latest_checkpoint:...}` looks for."""
    run = root / "runs" / experiment / "2026-01-01_00-00-00"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run / "metrics.json").write_text(json.dumps({"best_checkpoint": None}))
    return run / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("experiment", available("experiment"))
def test_every_experiment_composes_and_validates(experiment: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # imdb_distill's teacher is the newest finished imdb_minilm run
    fake_finished_run(tmp_path, "imdb_minilm")
    cfg = compose([f"experiment={experiment}"])
    assert cfg.experiment == experiment
    assert len(cfg.data.label_names) >= 2
    assert "model_checkpoint" in cfg.callbacks
    to_yaml(cfg)  # every interpolation resolves


def test_group_choice_and_dotlist_overrides_apply() -> None:
    cfg = compose(["experiment=imdb_tiny", "model=tiny_gpt2", "trainer.max_epochs=5", "model.optimizer.lr=3e-5"])
    assert cfg.choices.model == "tiny_gpt2"
    assert cfg.model.architecture.model_type == "gpt2"
    assert cfg.trainer.max_epochs == 5
    assert cfg.model.optimizer.lr == pytest.approx(3e-5)


def test_experiment_overrides_group_defaults() -> None:
    cfg = compose(["experiment=imdb_minilm"])
    assert cfg.data.limit_train is not None and cfg.data.group_by_length
    assert cfg.model.pretrained


def test_unknown_key_names_key_and_allowed_keys() -> None:
    with pytest.raises(ConfigError, match=r"trainer\.max_epoch'.*max_epochs"):
        compose(["trainer.max_epoch=3"])


def test_unknown_nested_key_in_data_group() -> None:
    with pytest.raises(ConfigError, match=r"data\.limit_trian'.*limit_train"):
        compose(["data.limit_trian=10"])


def test_bad_type_names_key() -> None:
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs"):
        compose(["trainer.max_epochs=three"])


def test_unknown_group_choice_lists_available() -> None:
    with pytest.raises(ConfigError, match=r"Unknown optimizer 'adamx'.*adamw"):
        compose(["optimizer=adamx"])


def test_unknown_experiment_lists_available() -> None:
    with pytest.raises(ConfigError, match=r"Unknown experiment 'imdb_bret'.*imdb_bert"):
        compose(["experiment=imdb_bret"])


def test_unknown_optimizer_class_is_named_with_close_matches() -> None:
    with pytest.raises(ConfigError, match=r"model\.optimizer\._target_: torch\.optim has no 'AdamX'.*Adam"):
        check_buildable(compose(["model.optimizer._target_=torch.optim.AdamX"]))


def test_bad_choice_value_lists_allowed() -> None:
    with pytest.raises(ConfigError, match=r"data\.source.*local, hub"):
        compose(["data.source=ftp"])


def test_duplicate_label_names_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"^Bad value for 'data\.label_names': negative named twice: give every"):
        compose(["data.label_names=[negative,positive,negative]"])


def test_unknown_callback_lists_registered() -> None:
    with pytest.raises(ConfigError, match=r"callbacks\.earlystop.*early_stopping"):
        compose(["callbacks.earlystop={}"])


def test_gpu_trainer_on_cpu_machine_fails_with_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"no CUDA GPU.*trainer=cpu"):
        compose(["trainer=gpu"])


def test_malformed_override_is_rejected() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        compose(["trainer.max_epochs"])


def test_resolved_yaml_has_no_interpolations() -> None:
    text = to_yaml(compose(["experiment=imdb_tiny"]))
    assert "${" not in text
    assert OmegaConf.create(text).data.path.endswith("imdb")


def test_distillation_without_a_teacher_run_says_what_to_train(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"teacher_ckpt.*No finished run under runs/imdb_minilm.*make train"):
        compose(["experiment=imdb_distill"])
    teacher = fake_finished_run(tmp_path, "imdb_minilm")
    cfg = compose(["experiment=imdb_distill"])
    assert Path(cfg.model.distillation.teacher_ckpt).resolve() == teacher.resolve()


def test_the_monitorable_metrics_are_the_ones_the_classifier_logs() -> None:
    from src.modules.text_classifier import classification_metrics

    logged = {"val/loss", *classification_metrics(2, "val/").keys()} - {"val/f1_per_class"}
    named = set(monitorable_metrics(["neg", "pos"]))
    assert {m for m in named if m.startswith("val/") and "/f1_per_class/" not in m} == logged
    assert {"val/f1_per_class/neg", "val/f1_per_class/pos", "train/loss"} <= named


@pytest.mark.parametrize(("override", "message"), [
    ("data.num_workers=-1", "'data.num_workers': must be >= 0"),
    ("model.optimizer.weight_decay=-0.1", "'model.optimizer.weight_decay': must be >= 0"),
    ("trainer.num_nodes=0", "'trainer.num_nodes': must be >= 1"),
    ("trainer.devices=0", "'trainer.devices': a device count >= 1"),
    ("trainer.gradient_clip_val=-1", "'trainer.gradient_clip_val': must be null or >= 0"),
    ("trainer.gradient_clip_algorithm=nrm", "'trainer.gradient_clip_algorithm': norm or value"),
    ("trainer.min_epochs=-1", "'trainer.min_epochs': null or a number >= 0"),
    ("trainer.min_epochs=two", "'trainer.min_epochs': null or a number >= 0"),
    ("trainer.val_check_interval=0", "'trainer.val_check_interval': a share of the epoch in (0, 1]"),
    ("trainer.limit_train_batches=1.5", "'trainer.limit_train_batches': a share in [0, 1] or a whole number"),
    ("trainer.overfit_batches=-1", "'trainer.overfit_batches': a share in [0, 1]"),
    ("trainer.num_sanity_val_steps=-2", "'trainer.num_sanity_val_steps': a batch count >= 0, or -1"),
    ("model.finetune.lora.r=0", "'model.finetune.lora.r': must be >= 1"),
    ("model.finetune.lora.dropout=1.5", "'model.finetune.lora.dropout': must be in [0, 1)"),
    ("model.finetune.adalora.delta_t=0", "'model.finetune.adalora.delta_t': must be >= 1"),
    ("model.finetune.prompt.num_virtual_tokens=0", "'model.finetune.prompt.num_virtual_tokens': must be >= 1"),
    ("model.architecture.hidden_size=63", "'model.architecture.hidden_size': 63 is not divisible by "
                                          "num_attention_heads=2"),
    ("model.architecture.num_hidden_layers=0", "'model.architecture.num_hidden_layers': must be >= 1"),
    ("model.finetune.frozen_layers=3", "'model.finetune.frozen_layers': 3 frozen layers but the model has 2"),
    ("callbacks.model_checkpoint.save_top_k=-5", "'callbacks.model_checkpoint.save_top_k': a number >= -1"),
    ("callbacks.throughput.window_size=1", "'callbacks.throughput.window_size': a number >= 2"),
    ("callbacks.throughput.window_size=many", "'callbacks.throughput.window_size': a number >= 2"),
])
def test_a_value_out_of_range_is_refused_at_compose_time(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        compose(["experiment=imdb_tiny", override])
    assert message in str(err.value)


def test_range_checks_follow_the_models_own_config_and_mode() -> None:
    with pytest.raises(ConfigError, match=r"'model\.architecture\.n_embd': 63 is not divisible by n_head=2"):
        compose(["experiment=imdb_tiny", "model=tiny_gpt2", "model.architecture.n_embd=63"])
    with pytest.raises(ConfigError, match=r"frozen_layers': 7 frozen layers but the model has 6"):
        compose(["experiment=imdb_minilm", "model.finetune.frozen_layers=7"])  # from MiniLM's config.json
    assert compose(["experiment=imdb_tiny", "model.finetune.lora.r=2"]).model.finetune.lora.r == 2  # not adalora
    with pytest.raises(ConfigError, match=r"adalora\.target_r': a rank in \[1, model\.finetune\.lora\.r=2\]"):
        compose(["experiment=imdb_tiny", "model.finetune.mode=adalora", "model.finetune.lora.r=2"])
