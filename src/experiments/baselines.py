"""Classical control groups: TF-IDF + multinomial Naive Bayes / logistic regression (scikit-learn).

They read the very rows a transformer run of the same data config and seed sees
(`TextClassificationDataModule.load_raw_splits`), and write the same metrics.json / predictions files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline

from src.datamodules.text_classification import TextClassificationDataModule
from src.errors import ConfigError
from src.experiments.evaluation import write_run
from src.registry import Registry
from src.train import save_predictions

BASELINES = Registry("baseline")


def _tfidf() -> TfidfVectorizer:
    """Word uni+bigrams, sublinear TF, terms in at least 2 documents (the usual strong setting)."""
    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode")


@BASELINES.register("tfidf_nb")
def tfidf_nb() -> Pipeline:
    return Pipeline([("tfidf", _tfidf()), ("clf", MultinomialNB(alpha=0.1))])


@BASELINES.register("tfidf_logreg")
def tfidf_logreg() -> Pipeline:
    return Pipeline([("tfidf", _tfidf()), ("clf", LogisticRegression(C=4.0, max_iter=1000))])


def build_baseline(name: str, args: dict[str, Any]) -> Pipeline:
    """The registered pipeline with `args` as scikit-learn parameters (e.g. clf__alpha, tfidf__min_df)."""
    pipeline = BASELINES.get_builder(name)()
    try:  # YAML has no tuples; scikit-learn wants them (e.g. tfidf__ngram_range: [1, 3])
        return pipeline.set_params(**{k: tuple(v) if isinstance(v, list) else v for k, v in args.items()})
    except ValueError as err:
        raise ConfigError(
            f"Bad args for baseline '{name}': {err}. Use Pipeline parameter names such as "
            "clf__C, clf__alpha, tfidf__ngram_range."
        ) from None


def run_baseline(name: str, args: dict[str, Any], cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fit on the train split, write validation and test predictions and the test metrics."""
    started = time.perf_counter()
    splits = TextClassificationDataModule(cfg.data, tokenizer=None, seed=cfg.seed).load_raw_splits()
    pipeline = build_baseline(name, args).fit(splits["train"]["text"], splits["train"]["label"])
    run_dir.mkdir(parents=True, exist_ok=True)
    val_probs = pipeline.predict_proba(splits["validation"]["text"])
    save_predictions(
        run_dir / "predictions_validation.csv",
        val_probs,
        splits["validation"]["label"],
        list(cfg.data.label_names),
    )
    test = (pipeline.predict_proba(splits["test"]["text"]), splits["test"]["label"])
    return write_run(run_dir, cfg, started, test, {"baseline": name, "args": args, "n_train": len(splits["train"])})
