"""Classical baselines: registered pipelines, Pipeline parameters from the design, clear errors, validation grids."""

import pytest
from datasets import Dataset

from src.designs.baselines import BASELINES, build_baseline, select_baseline
from src.errors import ConfigError


def test_registered_baselines_learn_a_toy_sentiment_task() -> None:
    texts = ["great film loved it", "wonderful great acting", "awful boring film", "terrible awful plot"] * 5
    labels = [1, 1, 0, 0] * 5
    for name in ("tfidf_nb", "tfidf_logreg"):
        pipeline = BASELINES.get_builder(name)().set_params(tfidf__min_df=1).fit(texts, labels)
        assert pipeline.predict(["loved the great acting", "boring awful film"]).tolist() == [1, 0]
        assert pipeline.predict_proba(texts).shape == (20, 2)


def test_design_args_are_pipeline_parameters() -> None:
    params = build_baseline("tfidf_logreg", {"clf__C": 0.5, "tfidf__ngram_range": [1, 3]}).get_params()
    assert params["clf__C"] == 0.5 and params["tfidf__ngram_range"] == (1, 3)
    with pytest.raises(ConfigError, match="clf__C"):
        build_baseline("tfidf_nb", {"C": 1.0})


def test_validation_selection_keeps_the_best_grid_point_and_records_every_one() -> None:
    """Train is 3:1 imbalanced, validation balanced: a tiny C predicts the majority class (val acc 0.5);
    C = 10 and C = 100 both separate the classes (1.0): the tie goes to the first, 10."""
    train = Dataset.from_dict(
        {"text": ["great film", "awful film", "great acting", "great plot"] * 5, "label": [1, 0, 1, 1] * 5}
    )
    validation = Dataset.from_dict({"text": ["great", "awful", "great great", "awful awful"], "label": [1, 0, 1, 0]})
    grid = {"clf__C": [1e-6, 10.0, 100.0]}
    pipeline, probs, selection = select_baseline(
        "tfidf_logreg", {"tfidf__min_df": 1}, grid, "val/acc", train, validation
    )
    assert [p["params"] for p in selection["grid"]] == [{"clf__C": c} for c in grid["clf__C"]]
    assert [p["val/acc"] for p in selection["grid"]] == [0.5, 1.0, 1.0]
    assert selection["chosen"] == {"clf__C": 10.0} and pipeline.get_params()["clf__C"] == 10.0
    assert selection["metric"] == "val/acc" and probs.shape == (4, 2)
    _, _, by_loss = select_baseline("tfidf_logreg", {"tfidf__min_df": 1}, grid, "val/loss", train, validation)
    losses = [p["val/loss"] for p in by_loss["grid"]]
    assert by_loss["chosen"] == by_loss["grid"][losses.index(min(losses))]["params"]  # lower is better for a loss
