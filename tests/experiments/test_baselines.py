"""Classical baselines: registered pipelines, scikit-learn parameters from the design, clear errors."""

import pytest

from src.errors import ConfigError
from src.experiments.baselines import BASELINES, build_baseline


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
