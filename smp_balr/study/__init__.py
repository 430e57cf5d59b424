"""The study: every configuration of a label fitted, tested and compared in one process.

A configuration is a BA list (``features``), a model, a balancing and a seed. The study of
one label (stage ``study@<label>``) fits every configuration of the ``study:`` grid on the
training speakers, in parallel through joblib on ``parallel.backend``, tests each on the
test speakers with the same functions as the single-configuration stages
(:func:`smp_balr.model.training.train`, :func:`smp_balr.evaluation.scores.test_model`),
chooses one on its training-side score alone (never a test number), and explains only the
chosen one.

* :mod:`.grid`: the configurations of the grid, their summary across seeds, the choice;
* :mod:`.run`: fitting and testing the configurations (:func:`~smp_balr.study.run.run_study`);
* :mod:`.outputs`: what the stage reads and writes.
"""

from smp_balr.study.grid import Configuration, choose, config_text, configurations, summarise

__all__ = ["Configuration", "choose", "config_text", "configurations", "summarise"]
