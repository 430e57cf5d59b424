"""Every option list of the pipeline, declared once (settings, library and messages use these)."""

from __future__ import annotations

#: selection methods a ``select@<label>-<method>`` stage runs
SELECTORS: tuple[str, ...] = ("all", "slda", "bayes")
#: BA lists a model can be trained on (``common``: the intersection of the selectors' lists)
FEATURE_METHODS: tuple[str, ...] = SELECTORS + ("common",)
#: multiple-testing corrections of the selection rules
#: (fdr_bh: Benjamini-Hochberg false discovery rate)
CORRECTIONS: tuple[str, ...] = ("bonferroni", "holm", "fdr_bh", "none")
#: units of analysis of the selection (see :mod:`smp_balr.selection.units`)
UNITS: tuple[str, ...] = ("auto", "within_speaker", "speaker", "utterance")
#: inference methods of the ``bayes`` selector
BAYES_METHODS: tuple[str, ...] = ("laplace", "vi", "mcmc")
#: classifiers (``logreg``: the linear probe)
MODEL_METHODS: tuple[str, ...] = ("logreg", "mlp", "dt")
#: ``train.balance``: 0 none, 1 oversample to the largest class, 2 class weights
BALANCE: tuple[int, ...] = (0, 1, 2)
#: hidden-layer activations of the MLP
ACTIVATIONS: tuple[str, ...] = ("identity", "logistic", "tanh", "relu")
#: model-agnostic SHAP explainers (models without an exact explainer)
AGNOSTIC_EXPLAINERS: tuple[str, ...] = ("permutation", "kernel")
#: background summaries for the model-agnostic explainers
BACKGROUNDS: tuple[str, ...] = ("kmeans", "sample")
#: hyper-parameter search strategies of the decision tree (see :mod:`smp_balr.model.tree_search`)
TREE_SEARCH: tuple[str, ...] = ("subsample", "halving", "full")
#: joblib backends for the parallel work (``dask``: a Dask cluster, optional packages)
PARALLEL_BACKENDS: tuple[str, ...] = ("loky", "threading", "multiprocessing", "dask")
#: corrections of the presence table's p-values across its labels
#: (holm: family-wise; fdr_bh: screening)
TABLE_CORRECTIONS: tuple[str, ...] = ("holm", "fdr_bh")
#: error control of the per-BA association analysis
#: (maxt: Westfall-Young family-wise; fdr_bh: Benjamini-Hochberg)
ASSOCIATION_CORRECTIONS: tuple[str, ...] = ("maxt", "fdr_bh")
