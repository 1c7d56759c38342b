"""Classical control groups: TF-IDF + multinomial Naive Bayes / logistic regression (scikit-learn).

They read the very rows a transformer run of the same data config and seed sees
(the data module's `load_raw_splits`), and write the same metrics.json / predictions files.
A baseline may choose its parameters from a grid: each point is fitted on train and scored on validation;
the test split is predicted once, by the chosen pipeline.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset
from omegaconf import DictConfig
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterGrid
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline

from src.builders import build_datamodule
from src.designs.evaluation import score, write_run
from src.errors import ConfigError
from src.registry import Registry
from src.reporting.stats import metric_fn
from src.rundir import save_predictions

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


def select_baseline(
    name: str, args: dict[str, Any], grid: dict[str, list[Any]], metric: str, train: Dataset, validation: Dataset
) -> tuple[Pipeline, np.ndarray, dict[str, Any]]:
    """Fit every `grid` point on train, keep the best by `metric` on validation (ties: the first in grid order).

    Returns the chosen pipeline, its validation probabilities and the validation score of every point."""
    fn, sign = metric_fn(metric), -1 if metric.endswith("loss") else 1
    labels = np.asarray(validation["label"])
    points: list[dict[str, Any]] = []
    best: tuple[Pipeline, np.ndarray, dict[str, Any]] | None = None
    with tempfile.TemporaryDirectory() as cache:  # grid points that share the TF-IDF settings fit it once
        for params in ParameterGrid(grid):
            pipeline = build_baseline(name, {**args, **params}).set_params(memory=cache)
            pipeline.fit(train["text"], train["label"])
            probs = pipeline.predict_proba(validation["text"])
            points.append({"params": params, metric: float(fn(labels, probs))})
            if best is None or sign * points[-1][metric] > sign * best[2][metric]:
                best = (pipeline.set_params(memory=None), probs, points[-1])
    pipeline, probs, chosen = best
    return pipeline, probs, {"metric": metric, "grid": points, "chosen": chosen["params"]}


def run_baseline(
    name: str, args: dict[str, Any], cfg: DictConfig, run_dir: Path, *, select: dict[str, list[Any]], metric: str
) -> dict[str, Any]:
    """Fit on train (choosing among `select` by the validation `metric`), then predict the test split once."""
    started = time.perf_counter()
    splits = build_datamodule(cfg, tokenizer=None).load_raw_splits()  # cleaned texts: no tokenizer needed
    pipeline, val_probs, selection = select_baseline(name, args, select, metric, splits["train"], splits["validation"])
    run_dir.mkdir(parents=True, exist_ok=True)
    label_names = list(cfg.data.label_names)
    val_labels = np.asarray(splits["validation"]["label"])
    save_predictions(run_dir, "validation", val_probs, val_labels, label_names)
    test = (pipeline.predict_proba(splits["test"]["text"]), np.asarray(splits["test"]["label"]))
    extra = {
        "baseline": name,
        "args": args,
        "n_train": len(splits["train"]),
        "selection": selection,
        "validation": score(val_probs, val_labels, label_names, prefix="val/"),
    }
    return write_run(run_dir, cfg, started, test, extra)
