"""Section 4 by execution: separation (Theorem 4.4), constant vs random delays in training (Section 4.3).

* :mod:`ampsim.theory.separation` -- ``ampsim verify separation``: pairs of graphs told apart
  by IDs from random delays (constructive route) and by learned AMP (learned route).
* :mod:`ampsim.theory.delays_training` -- the batch and the summary behind
  ``results/delays_training.{json,md}``.
"""
