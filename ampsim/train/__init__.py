"""Training learned AMP (Sections 5.1-5.2): tasks, models, fit/evaluate, checkpoints, tables.

``ampsim train --task limits1 --model amp-rnn --delay constant --seed 0`` runs
:func:`fit`; :mod:`ampsim.train.tables` regenerates Tables 2 and 3 from per-seed
result files; :mod:`ampsim.train.figure4` demonstrates Figure 4 by execution.
"""
from .synthetic import TaskSpec, TrainConfig, build_model, evaluate, fit, get_executor, load_model, load_task

__all__ = [
    "TaskSpec",
    "TrainConfig",
    "build_model",
    "evaluate",
    "fit",
    "get_executor",
    "load_model",
    "load_task",
]
