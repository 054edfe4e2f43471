"""Training learned AMP (Sections 5.1-5.2): tasks, models, fit/evaluate, checkpoints, tables.

``ampsim train --task limits1 --model amp-rnn --delay constant --seed 0`` runs
:func:`fit`; :mod:`ampsim.train.tables` regenerates Tables 2 and 3 from per-seed
result files; :mod:`ampsim.train.figure4` demonstrates Figure 4 by execution.
"""
from . import loop as _loop, synthetic as _synthetic
from .synthetic import TaskSpec, TrainConfig, build_model, evaluate, fit, get_executor, load_model, load_task

# The Table 2/3 protocol's names, importable from ampsim.train.loop as before; bound here (the loop is
# generic: it imports no task, each task passes its own evaluation in).
for _name in _synthetic.LOOP_NAMES:
    setattr(_loop, _name, getattr(_synthetic, _name))
del _name

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
