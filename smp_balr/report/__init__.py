"""The presence report: which modalities are present in the BAs, how strongly, and through which BAs.

Built from the results of the sweep's DVC experiments (``dvc exp show --json`` and their
output files read through ``dvc.api``), never by re-running a model. Pure functions:

* :mod:`.collect`: experiment records from ``dvc exp show --json``;
* :mod:`.choose`: the configuration per label chosen on the training-side score only,
  Holm correction over the configurations tried, the verdict;
* :mod:`.confounds`: Cramér's V between labels, label level, speakers per class;
* :mod:`.bas`: selector agreement (Jaccard) and BAs shared across labels;
* :mod:`.render`: figures and the Markdown / self-contained HTML documents;
* :mod:`.build`: reading the inputs and writing ``reports/presence.{md,html}``.

Entry: ``python -m smp_balr.report`` or ``make report``.
"""
