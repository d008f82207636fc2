"""Fit the forest and measure it: stratified hold-out split plus stratified k-fold CV on the training rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split

from model_training.data import Dataset
from model_training.params import CV_FOLDS, HOLDOUT_FRACTION, HYPERPARAMETERS, RANDOM_STATE


@dataclass(frozen=True)
class Evaluation:
    """Scores of one training run; the keys of :meth:`as_dict` are what the pipeline reads."""

    cv_scores: tuple[float, ...]
    holdout_accuracy: float
    holdout_macro_f1: float
    confusion: tuple[tuple[int, ...], ...]

    @property
    def cv_accuracy_mean(self) -> float:
        """Mean fold accuracy: the number the quality gate compares with its threshold."""
        return float(np.mean(self.cv_scores))

    @property
    def cv_accuracy_std(self) -> float:
        """Spread over folds, reported so a lucky mean on a noisy model is visible."""
        return float(np.std(self.cv_scores))

    def as_dict(self) -> dict[str, object]:
        """The metrics block of ``metadata.json``."""
        return {
            "cv_accuracy_mean": self.cv_accuracy_mean,
            "cv_accuracy_std": self.cv_accuracy_std,
            "cv_scores": list(self.cv_scores),
            "holdout_accuracy": self.holdout_accuracy,
            "holdout_macro_f1": self.holdout_macro_f1,
            "confusion_matrix": [list(row) for row in self.confusion],
        }


@dataclass(frozen=True)
class Split:
    """The stratified hold-out split; the same seed gives the same rows every run."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def split(dataset: Dataset) -> Split:
    """Keep :data:`HOLDOUT_FRACTION` of each class out of training."""
    train_x, test_x, train_y, test_y = train_test_split(
        dataset.features,
        dataset.targets,
        test_size=HOLDOUT_FRACTION,
        stratify=dataset.targets,
        random_state=RANDOM_STATE,
    )
    return Split(train_x, train_y, test_x, test_y)


def new_classifier() -> RandomForestClassifier:
    """A fresh, unfitted forest with the parameters of :mod:`model_training.params`."""
    return RandomForestClassifier(**HYPERPARAMETERS)


def cross_validate(data: Split) -> tuple[float, ...]:
    """Stratified k-fold accuracy on the training rows, computed before anything is fitted for export."""
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=RANDOM_STATE)
    scores = cross_val_score(new_classifier(), data.train_x, data.train_y, cv=folds, scoring="accuracy")
    return tuple(float(score) for score in scores)


def fit(data: Split) -> RandomForestClassifier:
    """Fit the forest that will be exported on the training rows only, so hold-out scores stay honest."""
    return new_classifier().fit(data.train_x, data.train_y)


def evaluate(clf: RandomForestClassifier, data: Split, cv_scores: tuple[float, ...]) -> Evaluation:
    """Score the fitted forest on the hold-out rows."""
    predicted = clf.predict(data.test_x)
    labels = list(range(len(clf.classes_)))
    return Evaluation(
        cv_scores=cv_scores,
        holdout_accuracy=float(accuracy_score(data.test_y, predicted)),
        holdout_macro_f1=float(f1_score(data.test_y, predicted, average="macro")),
        confusion=tuple(
            tuple(int(v) for v in row) for row in confusion_matrix(data.test_y, predicted, labels=labels)
        ),
    )
