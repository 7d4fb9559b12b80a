"""The seed's ablation ladder: one command, one MLflow run a step, one summary table.

``ladder`` and ``summary`` are plain Python; ``runner`` drives Kedro sessions and
MLflow runs; ``python -m classwise.ablation`` is the command.
"""

from classwise.ablation.ladder import AblationConfig, Step, apply_overrides, expand_steps, parse_ablation
from classwise.ablation.summary import StepOutcome, summary_markdown, summary_plot, summary_table

__all__ = [
    "AblationConfig", "Step", "StepOutcome", "apply_overrides", "expand_steps", "parse_ablation",
    "summary_markdown", "summary_plot", "summary_table",
]
