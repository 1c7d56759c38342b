"""Transfer-learning modes: frozen weights stay bit-identical; adapters train few weights, merge exactly."""

from pathlib import Path

import lightning as L
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from src.cli.merge import main as merge_main
from src.errors import ConfigError
from src.modules.finetuning import merge_and_save
from src.modules.model_builder import load_tokenizer
from src.modules.text_classifier import TextClassifier
from tests.training_helpers import build_module, quick_fit

FAST = ("data.limit_train=64", "data.max_length=32", "optimizer=sgd", "model.optimizer.lr=0.5")


def params(module: TextClassifier) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.model.named_parameters()}


def changed(before: dict[str, torch.Tensor], module: TextClassifier, prefix: str) -> list[bool]:
    after = dict(module.model.named_parameters())
    return [not torch.equal(before[n], after[n]) for n in before if n.startswith(prefix)]


def sample_batch(module: TextClassifier) -> dict[str, torch.Tensor]:
    tokenizer = load_tokenizer(module.cfg)
    return dict(tokenizer(["a truly wonderful film", "dull, long and badly acted"], padding=True,
                          return_tensors="pt"))


def test_frozen_encoder_is_bit_identical_and_head_trains(make_cfg) -> None:
    module = build_module(make_cfg(*FAST, "model.finetune.mode=frozen"))
    before = params(module)
    quick_fit(make_cfg(*FAST, "model.finetune.mode=frozen"), module)
    assert not any(changed(before, module, "bert."))
    assert all(changed(before, module, "classifier."))


def test_partial_freezes_embeddings_and_bottom_layers(make_cfg) -> None:
    cfg = make_cfg(*FAST, "model.finetune.mode=partial", "model.finetune.frozen_layers=1")
    module = build_module(cfg)
    before = params(module)
    quick_fit(cfg, module)
    assert not any(changed(before, module, "bert.embeddings."))
    assert not any(changed(before, module, "bert.encoder.layer.0."))
    assert any(changed(before, module, "bert.encoder.layer.1."))
    assert all(changed(before, module, "classifier."))


def test_partial_with_too_many_layers_is_a_config_error(make_cfg) -> None:
    with pytest.raises(ConfigError, match="'model.finetune.frozen_layers': 5 frozen layers but the model has 2"):
        make_cfg("model.finetune.mode=partial", "model.finetune.frozen_layers=5")  # refused when composed


@pytest.mark.parametrize("model", ["tiny_bert", "tiny_gpt2"])
def test_lora_trains_under_2_percent_and_merges_to_same_logits(make_cfg, tmp_path: Path, model: str) -> None:
    cfg = make_cfg(*FAST, f"model={model}", "model.finetune.mode=lora")
    module = build_module(cfg)
    assert 0 < module.parameter_counts["trainable_pct"] < 2.0
    base_before = {n: p for n, p in params(module).items() if "lora_" not in n and "modules_to_save" not in n}
    quick_fit(cfg, module)
    after = dict(module.model.named_parameters())
    assert all(torch.equal(base_before[n], after[n]) for n in base_before)  # base weights are frozen
    assert any(not torch.equal(p, torch.zeros_like(p)) for n, p in after.items() if "lora_B" in n)

    module.eval()
    batch = sample_batch(module)
    with torch.no_grad():
        adapter_logits = module(batch)
        out = merge_and_save(module.model, load_tokenizer(cfg.model), tmp_path / "merged")
        merged = AutoModelForSequenceClassification.from_pretrained(out).eval()
        merged_logits = merged(**batch).logits
    assert not any("lora" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(merged_logits, adapter_logits, atol=1e-5, rtol=1e-4)


def test_merge_cli_turns_a_lora_checkpoint_into_a_plain_model(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(*FAST, "model.finetune.mode=lora")
    module = quick_fit(cfg)
    ckpt = tmp_path / "lora.ckpt"
    module.trainer.save_checkpoint(ckpt)
    assert merge_main([f"ckpt={ckpt}", f"out={tmp_path / 'export'}"]) == 0
    restored = TextClassifier.from_checkpoint(ckpt).eval()
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "export").eval()
    batch = sample_batch(restored)
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).logits, module.eval()(batch), atol=1e-5, rtol=1e-4)
    assert (tmp_path / "export" / "tokenizer.json").is_file()


def test_adalora_gets_the_trainer_step_count_and_allocates_ranks(make_cfg) -> None:
    cfg = make_cfg(*FAST, "model.finetune.mode=adalora", "model.finetune.adalora.tinit=1",
                   "model.finetune.adalora.tfinal=1")
    module = quick_fit(cfg, max_steps=4)
    peft_config = module.model.peft_config["default"]
    assert peft_config.total_step == 4
    assert peft_config.rank_pattern  # set by update_and_allocate once the final budget is reached


def test_adalora_too_short_for_its_schedule_is_a_config_error(make_cfg) -> None:
    cfg = make_cfg(*FAST, "model.finetune.mode=adalora", "model.finetune.adalora.tinit=5")
    with pytest.raises(ConfigError, match="tinit"):
        quick_fit(cfg, max_steps=2)


def test_prompt_tuning_trains_only_the_prompt_and_head(make_cfg) -> None:
    cfg = make_cfg(*FAST, "model.finetune.mode=prompt", "model.finetune.prompt.num_virtual_tokens=4")
    module = build_module(cfg)
    before = params(module)
    quick_fit(cfg, module)
    moved = {n.split(".")[0] + ("(prompt)" if "prompt_encoder" in n else "")
             for n, p in module.model.named_parameters() if not torch.equal(before[n], p)}
    assert moved == {"prompt_encoder(prompt)", "base_model"}  # the prompt + the head copy peft trains
    assert all("modules_to_save" in n or "prompt_encoder" in n
               for n, p in module.model.named_parameters() if not torch.equal(before[n], p))


def test_prompt_tuning_refuses_gpt2(make_cfg) -> None:
    with pytest.raises(ConfigError, match="GPT-2"):
        build_module(make_cfg("model=tiny_gpt2", "model.finetune.mode=prompt"))


def test_unknown_mode_fails_at_compose_time(make_cfg) -> None:
    with pytest.raises(ConfigError, match="model.finetune.mode"):
        make_cfg("model.finetune.mode=bitfit")


def test_parameter_counts_are_logged_and_printed(make_cfg, tmp_path: Path, capsys) -> None:
    cfg = make_cfg(*FAST, "model.finetune.mode=frozen")
    logger = L.pytorch.loggers.CSVLogger(tmp_path, name="csv", version="")
    module = quick_fit(cfg, logger=logger, max_steps=1)
    logger.save()
    metrics = (tmp_path / "csv" / "metrics.csv").read_text()
    assert "params/trainable" in metrics and str(module.parameter_counts["trainable"]) in metrics
    assert module.parameter_counts["trainable"] == 130  # the 64 -> 2 classifier


def test_lora_and_adalora_options_reach_peft(make_cfg) -> None:
    lora = build_module(make_cfg("model.finetune.mode=lora", "model.finetune.lora.r=4",
                                 "model.finetune.lora.alpha=32", "model.finetune.lora.dropout=0.2",
                                 "model.finetune.lora.target_modules=[key]"))
    config = lora.model.peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout) == (4, 32, 0.2)
    assert set(config.target_modules) == {"key"}
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1]
               for n, _ in lora.model.named_parameters() if "lora_A" in n}
    assert adapted == {"key"}

    ada = build_module(make_cfg("model.finetune.mode=adalora", "model.finetune.adalora.target_r=2",
                                "model.finetune.adalora.delta_t=3")).model.peft_config["default"]
    assert (ada.init_r, ada.target_r, ada.deltaT, set(ada.target_modules)) == (8, 2, 3, {"query", "value"})


def test_prompt_initialised_from_text_embeddings(make_cfg) -> None:
    module = build_module(make_cfg("model.finetune.mode=prompt", "model.finetune.prompt.num_virtual_tokens=3",
                                   "model.finetune.prompt.init_text=great movie"))
    ids = load_tokenizer(module.cfg)("great movie")["input_ids"][:3]  # peft: [CLS] great movie [SEP], cut
    prompt = module.model.prompt_encoder["default"].embedding.weight
    words = module.model.get_base_model().bert.embeddings.word_embeddings.weight
    assert torch.equal(prompt, words[ids])
