"""`--help` on every entry point (options, config groups and keys from the schema) and `print_config=true`."""

import importlib
import pkgutil

import pytest

import src.cli
from src.cli.train import main as train_main
from src.schemas import TrainerConfig

ENTRY_POINTS = sorted(m.name for m in pkgutil.iter_modules(src.cli.__path__))


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_every_entry_point_prints_its_usage(name, capsys):
    module = importlib.import_module(f"src.cli.{name}")
    assert module.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(module.__doc__.strip().splitlines()[0]) and "Options (key=value" in out


def test_train_help_lists_groups_with_choices_and_keys_with_types_and_defaults(capsys):
    assert train_main(["-h"]) == 0
    out = capsys.readouterr().out
    assert "  model: bert_base, gpt2, minilm, minilm_mean, tiny_bert, tiny_gpt2 (default: minilm)" in out
    assert "  experiment: agnews_minilm, imdb_bert," in out
    assert "  data.max_length: int = 256" in out and "  data.cleaning.html: bool = True" in out
    assert f"  trainer.log_every_n_steps: int = {TrainerConfig.log_every_n_steps}" in out
    assert "  print_config: bool = False" in out


def test_print_config_shows_the_composed_tree_and_does_not_train(capsys, tmp_path):
    run_dir = tmp_path / "run"
    assert train_main(["experiment=imdb_tiny", "print_config=true", f"run_dir={run_dir}", "seed=7"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CONFIG") and "├── seed: 7" in out and "num_hidden_layers: 2" in out
    assert not run_dir.exists()
