"""Why a class is weak: out-of-fold probabilities, label issues (cleanlab), per-class evidence and figures.

Plain Python on top of the training core; no Kedro imports.
"""

from classwise.diagnosis.config import DiagnoseConfig
from classwise.diagnosis.evidence import class_diagnosis, oof_correlations
from classwise.diagnosis.folds import check_fold_sizes, out_of_fold_probabilities, stratified_folds
from classwise.diagnosis.issues import duplicate_issues, find_issues, join_training_dynamics, score_against_noise

__all__ = [
    "DiagnoseConfig", "check_fold_sizes", "class_diagnosis", "duplicate_issues", "find_issues", "join_training_dynamics",
    "oof_correlations", "out_of_fold_probabilities", "score_against_noise", "stratified_folds",
]
