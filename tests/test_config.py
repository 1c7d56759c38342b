"""Config composition: every shipped experiment composes; typos and bad choices fail with the key named."""

import pytest
import torch
from omegaconf import OmegaConf

from src.config import available, compose, to_yaml
from src.errors import ConfigError


@pytest.mark.parametrize("experiment", available("experiment"))
def test_every_experiment_composes_and_validates(experiment: str) -> None:
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


def test_unknown_registry_name_lists_registered() -> None:
    with pytest.raises(ConfigError, match=r"model\.optimizer\.name.*Registered: .*adamw"):
        compose(["model.optimizer.name=lion9000"])


def test_bad_choice_value_lists_allowed() -> None:
    with pytest.raises(ConfigError, match=r"data\.source.*local, hub"):
        compose(["data.source=ftp"])


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
