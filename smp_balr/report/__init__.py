"""The presence report: which modalities are present in the BAs, how strongly, through which BAs.

Built by stage ``report`` from the study stages' outputs (``metrics/study/<label>/``), never
by re-running a model. Pure functions:

* :mod:`.verdict`: each label's own p-value corrected across the table's labels, the rule;
* :mod:`.confounds`: Cramér's V between labels, label level, speakers per class;
* :mod:`.bas`: selector agreement (Jaccard) and BAs shared across labels;
* :mod:`.figures` and :mod:`.document`: figures and the Markdown / self-contained HTML documents;
* :mod:`.build`: reading the study outputs and writing ``reports/presence.{md,html}``;
* :mod:`.experiments`: ``make exp``, the DVC experiments' presence tables side by side.
"""
