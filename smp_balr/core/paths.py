"""The one place that builds the pipeline's file paths (relative to the project root)."""

from __future__ import annotations

from pathlib import Path

DATA = Path("data")
FEATURES = Path("features")
MODELS = Path("models")
METRICS = Path("metrics")

DEMO_DIR = DATA / "demo"
DEMO_BA_DIR = DEMO_DIR / "ba"
DEMO_LABELS = DEMO_DIR / "labels.csv"
DEMO_TRUTH = DEMO_DIR / "truth.json"


def train_table(name: str) -> Path:
    """Formatted training table written by the ``format`` stage."""
    return DATA / f"{name}_train_data.csv"


def test_table(name: str) -> Path:
    """Formatted test table written by the ``format`` stage."""
    return DATA / f"{name}_test_data.csv"


def full_table(name: str) -> Path:
    """Formatted table without a split (``data.split: 0``)."""
    return DATA / f"{name}_data.csv"


def label_features(label: str) -> Path:
    """Folder of one label's selected-BA files (each select stage of the label writes one)."""
    return FEATURES / label


def features_file(label: str, method: str) -> Path:
    """Selected BAs for one label and one method (``common``: the intersection)."""
    return label_features(label) / f"{label}_{method}_features.csv"


def selection_stats(label: str, method: str) -> Path:
    """Per-method detail table in ``metrics/`` (e.g. the full BA x class bayes table)."""
    return METRICS / "selection" / f"{label}_{method}_table.csv"


SELECTION_DIR = METRICS / "selection"


def selection_info(label: str, method: str) -> Path:
    """Run summary of one select stage in ``metrics/selection/``.

    It holds the unit used, the rows and the count selected.
    """
    return SELECTION_DIR / f"{label}_{method}_info.json"


COMMON_DIR = METRICS / "common"  # run summaries of the common stages


def common_info(label: str) -> Path:
    """Run summary of stage ``common@<label>`` (files intersected, count) in ``metrics/common/``."""
    return COMMON_DIR / f"{label}_info.json"


SELECTION_METRICS = METRICS / "selection.json"

BAS_DIR = METRICS / "bas"  # per-BA association tables and the BA profile of the training corpus
BA_PROFILE = BAS_DIR / "profile.csv"  # per BA: frequency, typicality, dropout, dead / constant
BA_PROFILE_INFO = BAS_DIR / "profile.json"  # counts and quantiles of the profile


def association_table(label: str) -> Path:
    """Per BA and class association with ``label`` (stage ``associate@<label>``)."""
    return BAS_DIR / f"{label}_association.csv"


def association_info(label: str) -> Path:
    """Counts of the association analysis of ``label`` (unit, correction, associated BAs)."""
    return BAS_DIR / f"{label}_association.json"


MODEL_FILE = MODELS / "model.joblib"
TRAIN_METRICS = METRICS / "train.json"  # model, training-side score, sizes (DVC metric)
TRAIN_DETAILS = METRICS / "train_details.json"  # class counts, best parameters, fit details

TEST_METRICS = METRICS / "test.json"  # the headline figures (DVC metric)
TEST_DETAILS = METRICS / "test_details.json"  # every test figure
CLASSIFICATION_REPORT = METRICS / "classification_report.csv"
PREDICTIONS = METRICS / "predictions.csv"
CONFUSION_PNG = METRICS / "confusion_matrix.png"

EXPLAIN_METRICS = METRICS / "explain.json"  # top-5 / top-10 shares (DVC metric)
EXPLAIN_DETAILS = METRICS / "explain_details.json"  # top BAs, explainer, additivity, ...
EXPLAIN_DIR = METRICS / "explain"
EXPLAIN_TOP = METRICS / "explain_top20.csv"
TRAIN_CURVES = (
    METRICS / "train_curves"
)  # mlp: loss and held-out-speaker score per epoch; dt/logreg: CV score per grid point


def train_curve(name: str) -> Path:
    """One training curve in TRAIN_CURVES.

    The curves: ``train_loss``, ``valid_balanced_accuracy``, ``cv_score``.
    """
    return TRAIN_CURVES / f"{name}.csv"


SETTINGS_CHECK = METRICS / "params_check.json"  # written by stage `check` once params.yaml is valid

#: folders that hold outputs (their sub-folders of metrics/ too): searched for the temporaries
#: of killed runs
OUTPUT_FOLDERS = (DATA, DEMO_DIR, FEATURES, MODELS, METRICS)

STUDY_DIR = METRICS / "study"  # one folder per label, written by stage study@<label>
STUDY_MODELS = MODELS / "study"


def study_dir(label: str) -> Path:
    """Outputs of stage ``study@<label>``.

    The results table, the chosen configuration, its predictions and SHAP.
    """
    return STUDY_DIR / label


def study_model(label: str) -> Path:
    """The chosen configuration's fitted model of stage ``study@<label>``."""
    return STUDY_MODELS / f"{label}.joblib"


#: files inside :func:`study_dir`
STUDY_RESULTS = (
    "results.csv"  # one row per configuration and seed, failed ones with their error line
)
STUDY_CHOSEN = "chosen.json"  # the chosen configuration and its figures
STUDY_PREDICTIONS = "predictions.csv"  # the chosen configuration's test predictions
STUDY_CONFUSION = "confusion_matrix.png"
STUDY_EXPLAIN = "explain"  # the chosen configuration's SHAP outputs (folder)

REPORTS = Path("reports")
PRESENCE_MD = REPORTS / "presence.md"
PRESENCE_HTML = REPORTS / "presence.html"
PRESENCE_FIGURES = REPORTS / "presence_files"
PRESENCE_METRICS = (
    METRICS / "presence.json"
)  # per label: verdict, chosen configuration, effect sizes (DVC metric)
