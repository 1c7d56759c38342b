"""Knowledge distillation: the loss equals its hand-computed value, the student starts from the teacher's
layers, a short KD run lowers the loss, and `train` runs a distillation experiment end to end."""

import math

import pytest
import torch

from src.builders import build_model
from src.config import compose
from src.errors import ConfigError
from src.modules.distillation import DistillationClassifier, kd_loss, student_state
from src.training import train
from tests.compression.helpers import real_batch, save_plain_checkpoint
from tests.training_helpers import build_module


def test_kd_loss_matches_hand_computation():
    student = torch.tensor([[1.0, 2.0], [0.5, -0.5]])
    teacher = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    temperature = 2.0

    def softmax(row):
        exps = [math.exp(x / temperature) for x in row]
        return [e / sum(exps) for e in exps]

    expected = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist(), strict=True):
        p, q = softmax(t_row), softmax(s_row)
        expected += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    expected = expected / 2 * temperature**2  # batch mean, times T^2
    assert kd_loss(student, teacher, temperature).item() == pytest.approx(expected, rel=1e-6)


def test_student_layers_come_from_the_teacher():
    teacher = {"bert.encoder.layer.0.w": torch.zeros(1), "bert.encoder.layer.1.w": torch.ones(1),
               "bert.encoder.layer.2.w": torch.full((1,), 2.0), "classifier.w": torch.full((1,), 3.0)}
    state = student_state(teacher, [0, 2])
    assert state.keys() == {"bert.encoder.layer.0.w", "bert.encoder.layer.1.w", "classifier.w"}
    assert state["bert.encoder.layer.1.w"].item() == 2.0


@pytest.fixture
def teacher_ckpt(make_cfg, tmp_path):
    return save_plain_checkpoint(build_module(make_cfg()), tmp_path / "teacher.ckpt")


def test_short_kd_run_lowers_the_loss(make_cfg, teacher_ckpt):
    cfg = make_cfg(f"model.distillation.teacher_ckpt={teacher_ckpt}", "model.distillation.student_layers=[1]",
                   "model.distillation.hidden_weight=0.5")
    module = build_model(cfg)
    assert isinstance(module, DistillationClassifier) and module.model.config.num_hidden_layers == 1
    assert torch.equal(module.model.bert.encoder.layer[0].output.dense.weight,
                       module.teacher.bert.encoder.layer[1].output.dense.weight)
    batch = real_batch(cfg, 32)
    optimizer = torch.optim.AdamW(module.model.parameters(), lr=1e-3)
    module.train()
    first = module.distillation_losses(batch)[0]
    assert set(first) == {"kd", "hard", "hidden", "objective"}
    for _ in range(5):
        optimizer.zero_grad()
        module.distillation_losses(batch)[0]["objective"].backward()
        optimizer.step()
    assert module.distillation_losses(batch)[0]["objective"] < first["objective"]
    assert not [k for k in module.state_dict() if k.startswith("teacher")]  # checkpoints: the student only


@pytest.mark.slow
def test_train_runs_a_distillation_experiment(make_cfg, teacher_ckpt):
    summary = train(make_cfg(f"model.distillation.teacher_ckpt={teacher_ckpt}", "data.limit_train=64",
                             "trainer.max_epochs=1"))
    assert 0.0 <= summary["test"]["test/acc"] <= 1.0


def test_distillation_config_is_checked(make_cfg, teacher_ckpt, tmp_path):
    with pytest.raises(ConfigError, match="No finished run under runs/no_such_experiment"):
        compose(["experiment=imdb_distill",
                 "model.distillation.teacher_ckpt=${latest_checkpoint:no_such_experiment}"])
    with pytest.raises(ConfigError, match="does not exist"):
        make_cfg(f"model.distillation.teacher_ckpt={tmp_path / 'nope.ckpt'}")
    with pytest.raises(ConfigError, match="alpha"):
        make_cfg(f"model.distillation.teacher_ckpt={teacher_ckpt}", "model.distillation.alpha=2")


def test_init_checkpoint_starts_from_its_weights(make_cfg, teacher_ckpt):
    cfg = make_cfg(f"model.init_checkpoint={teacher_ckpt}")
    module = build_model(cfg)
    saved = torch.load(teacher_ckpt, weights_only=True)["state_dict"]
    assert all(torch.equal(module.state_dict()[k], v) for k, v in saved.items())
    gpt2 = make_cfg("model=tiny_gpt2", f"model.init_checkpoint={teacher_ckpt}")
    with pytest.raises(ConfigError, match="does not fit this model"):
        build_model(gpt2)
