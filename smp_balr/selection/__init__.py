"""BA selection: ``all``, ``slda`` (stepwise discriminant analysis), ``bayes`` (bambi), ``common``.

Use :func:`select` (one method, one label) and :func:`precision_recall` (quality vs truth).
"""

from smp_balr.selection.api import METHODS, SelectionOutput, run_selection, select
from smp_balr.selection.quality import precision_recall

__all__ = ["METHODS", "SelectionOutput", "run_selection", "select", "precision_recall"]
