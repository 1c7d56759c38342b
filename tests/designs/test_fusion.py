"""Fusion methods on a constructed case: each is at least as good as its worst member, with valid outputs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from src.designs.evaluation import score
from src.designs.fusion import Member, average_weights, run_fusion, vote
from src.errors import ConfigError
from src.modules.text_classifier import TextClassifier
from src.rundir import read_predictions, save_predictions

LABELS = ["negative", "positive"]
CFG = OmegaConf.create({"experiment": "fusion-test", "seed": 1, "data": {"label_names": LABELS}})


def _noisy_member(labels: np.ndarray, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities that pick the true class with probability `accuracy`, errors independent of others."""
    pred = np.where(rng.random(len(labels)) < accuracy, labels, 1 - labels)
    confidence = 0.5 + rng.uniform(0.05, 0.45, len(labels))
    probs = np.empty((len(labels), 2))
    probs[np.arange(len(labels)), pred] = confidence
    probs[np.arange(len(labels)), 1 - pred] = 1 - confidence
    return probs


@pytest.fixture
def members(tmp_path: Path) -> list[Member]:
    """Three members with independent errors (70-80 % accurate) on the same validation and test rows."""
    rng = np.random.default_rng(0)
    out = []
    splits = {split: rng.integers(0, 2, 400) for split in ("validation", "test")}
    for index, accuracy in enumerate((0.7, 0.75, 0.8)):
        run_dir = tmp_path / f"member{index}"
        run_dir.mkdir()
        for split, labels in splits.items():
            save_predictions(run_dir, split, _noisy_member(labels, accuracy, rng), labels, LABELS)
        out.append(Member(run_dir, CFG))
    return out


@pytest.mark.parametrize("method", ["weighted_average", "majority_vote", "stacking"])
def test_fusion_is_no_worse_than_its_worst_member(method: str, members: list[Member], tmp_path: Path) -> None:
    summary = run_fusion(method, members, CFG, tmp_path / method)
    probs, labels = read_predictions(tmp_path / method)
    assert probs.shape == (400, 2)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5) and (probs >= 0).all() and (probs <= 1).all()
    member_scores = [score(*m.predictions("test"), LABELS) for m in members]
    for metric in ("test/acc", "test/f1_macro"):
        assert summary["test"][metric] >= min(s[metric] for s in member_scores)
    assert json.loads((tmp_path / method / "metrics.json").read_text())["fusion"] == method


def test_what_was_fitted_on_validation_is_saved(members: list[Member], tmp_path: Path) -> None:
    run_fusion("weighted_average", members, CFG, tmp_path / "avg")
    weights = json.loads((tmp_path / "avg" / "metrics.json").read_text())["fitted"]["weights"]
    assert list(weights) == [str(m.run_dir) for m in members] and sum(weights.values()) == pytest.approx(1.0)
    assert weights[str(members[2].run_dir)] > weights[str(members[0].run_dir)]  # 80 % accurate vs 70 %
    run_fusion("stacking", members, CFG, tmp_path / "stack")
    fitted = json.loads((tmp_path / "stack" / "metrics.json").read_text())["fitted"]
    assert fitted["features"][:2] == [f"{members[0].run_dir}:prob_negative", f"{members[0].run_dir}:prob_positive"]
    assert np.shape(fitted["coef"]) == (1, 6) and len(fitted["intercept"]) == 1 and fitted["classes"] == [0, 1]
    assert OmegaConf.load(tmp_path / "avg" / "config.yaml") == CFG  # the config it was given, saved with it


def test_vote_follows_the_majority_and_breaks_ties_by_probability() -> None:
    probs = np.array([[[0.9, 0.1], [0.4, 0.6]], [[0.6, 0.4], [0.45, 0.55]], [[0.2, 0.8], [0.7, 0.3]]])
    fused = vote(probs)
    assert fused.argmax(1).tolist() == [0, 1]  # 2 of 3 votes each
    tie = vote(probs[:2, :1])  # one vote each, mean prob favours 0
    assert tie.argmax(1).tolist() == [0]


def test_members_on_different_rows_are_refused(members: list[Member], tmp_path: Path) -> None:
    labels = np.zeros(10, dtype=int)
    odd = tmp_path / "odd"
    odd.mkdir()
    for split in ("validation", "test"):
        save_predictions(odd, split, np.full((10, 2), 0.5), labels, LABELS)
    with pytest.raises(ConfigError, match="different"):
        run_fusion("majority_vote", [members[0], Member(odd, CFG)], CFG, tmp_path / "out")


def test_average_weights_is_the_elementwise_mean() -> None:
    first = {"w": torch.tensor([1.0, 3.0]), "steps": torch.tensor(4)}
    second = {"w": torch.tensor([3.0, 5.0]), "steps": torch.tensor(9)}
    soup = average_weights([first, second])
    assert torch.equal(soup["w"], torch.tensor([2.0, 4.0])) and soup["steps"] == 4
    with pytest.raises(ConfigError, match="same architecture"):
        average_weights([first, {"w": torch.zeros(3), "steps": torch.tensor(1)}])


def _save_checkpoint(module: TextClassifier, path: Path) -> Path:
    """What Lightning + TextClassifier.on_save_checkpoint write, for from_checkpoint to read."""
    path.parent.mkdir(parents=True)
    torch.save(
        {
            "hyper_parameters": dict(module.hparams),
            "state_dict": module.state_dict(),
            "hf_config": module.model.config.to_dict(),
        },
        path,
    )
    (path.parent.parent / "metrics.json").write_text(json.dumps({"best_checkpoint": str(path)}))
    return path.parent.parent


def test_soup_of_a_model_and_its_mirror_is_no_worse_than_the_worse_one(make_cfg, tmp_path: Path) -> None:
    """Member B = A with the classifier negated (predictions flipped): the soup's head is zero, so it predicts
    one class everywhere — 50 % on the balanced test slice, never below min(acc_A, 1 - acc_A)."""
    cfg = make_cfg("data.limit_test=32")
    torch.manual_seed(0)
    model = TextClassifier(OmegaConf.to_container(cfg.model, resolve=True), LABELS)
    first = _save_checkpoint(model, tmp_path / "a" / "checkpoints" / "a.ckpt")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "classifier" in name:
                param.neg_()
    second = _save_checkpoint(model, tmp_path / "b" / "checkpoints" / "b.ckpt")
    members = [Member(first, cfg), Member(second, cfg)]
    summary = run_fusion("soup", members, cfg, tmp_path / "soup")
    probs, labels = read_predictions(tmp_path / "soup")
    assert probs.shape == (32, 2) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    member_acc = [score(*m.predictions("test"), LABELS)["test/acc"] for m in members]
    assert member_acc[0] == pytest.approx(1 - member_acc[1])
    assert summary["test"]["test/acc"] >= min(member_acc)
    assert np.allclose(probs, 0.5, atol=1e-4)
