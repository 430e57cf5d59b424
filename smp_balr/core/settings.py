"""Typed, frozen settings built from ``params.yaml`` once per stage: the only module that
speaks of parameter keys.

Each block of params.yaml is a frozen dataclass whose fields carry their own check (type
and range). :func:`load_settings` reads the file, refuses unknown keys, checks every value
and the relations between blocks (``label`` in ``labels``, ``features.method`` produced by
``selection.selectors``), so that a wrong setting fails with one line before any stage
touches an output. The defaults below equal the shipped params.yaml (a test checks it).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from smp_balr.core import options
from smp_balr.core.errors import UserError
from smp_balr.core.multitest import check_permutations
from smp_balr.core.params import (
    DEFAULT_PARAMS,
    as_choice,
    as_float,
    as_int,
    check_keys,
    load_params,
)

Check = Callable[[Any, str], Any]

# --------------------------------------------------------------------------- names
# Label names (`label`, `labels`, the keys of `classes`), class names in `classes`, `data.name`,
# selector and model names reach stage commands (DVC interpolates them) and output paths
# (features/<label>_<method>_features.csv, data/<name>_train_data.csv). A *plain name* cannot
# run anything in a shell, split into two arguments or leave the project: letters, digits, `_`,
# `-` and `.`, not starting with `-` or `.`, at most MAX_NAME characters. Class values in the
# labels CSV are data, not names: they may hold spaces, but no markup or control character
# (class_value_problem), so that no page we write or feed carries a live payload.

MAX_NAME = 64
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_MARKUP = set("<>&\"'|`")  # plus every control character (newlines, tabs, escapes)
EXCERPT = 40  # characters of a bad value quoted in an error line


def excerpt(value: object, limit: int = EXCERPT) -> str:
    """``repr`` of ``value`` cut to about ``limit`` characters (never a whole file in a line)."""
    text = (
        repr(value)
        if not isinstance(value, (bytes, bytearray))
        else repr(bytes(value[: limit + 1]))
    )
    return text if len(text) <= limit + 2 else text[:limit] + "...(cut)"


def _suggest(value: str) -> str:
    """A plain name close to ``value`` (the bad characters replaced by ``_``), for the advice."""
    out = re.sub(r"[^A-Za-z0-9_.\-]+", "_", value).strip("-._") or "name"
    return out[:MAX_NAME]


def name_problem(value: object) -> str | None:
    """Why ``value`` is not a plain name, or None when it is one."""
    if not isinstance(value, str):
        return f"it is a {type(value).__name__}, not a text"
    if value == "":
        return "it is empty"
    if len(value) > MAX_NAME:
        return f"it has {len(value)} characters (at most {MAX_NAME})"
    if value[0] in "-.":
        return f"it starts with '{value[0]}'"
    if not _PLAIN.fullmatch(value):
        bad = next(ch for ch in value if not re.fullmatch(r"[A-Za-z0-9_.\-]", ch))
        return f"it holds {bad!r}; only letters, digits, '_', '-' and '.' are allowed"
    return None


def check_name(value: object, where: str, rename: str = "rename it") -> str:
    """Return ``value`` if it is a plain name, else raise a one-line :class:`UserError`.

    Parameters
    ----------
    value : object
        The name.
    where : str
        Where it comes from, e.g. ``"params.yaml: labels"`` or ``"labels file x.csv: column"``.
    rename : str
        How to rename it (the place to edit).

    Raises
    ------
    UserError
        ``<where> <value>: <why>; names reach commands and file names, so <rename>, e.g. to
        <suggestion>``.
    """
    why = name_problem(value)
    if why is None:
        return value  # type: ignore[return-value]
    hint = f", e.g. to '{_suggest(value)}'" if isinstance(value, str) else ""
    raise UserError(
        f"{where} {excerpt(value)} is not a plain name: {why}; names reach commands and "
        f"file names, so {rename}{hint}"
        f" (letters, digits, '_', '-', '.'; no leading '-' or '.'; at most {MAX_NAME} characters)"
    )


def class_value_problem(value: str) -> str | None:
    """Why class value ``value`` could carry markup into a page, or None when it is safe."""
    for ch in value:
        if ch in _MARKUP:
            return f"it holds {ch!r}"
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            return f"it holds the control character {ch!r}"
    return None


# --------------------------------------------------------------------------- value checks


def _whole(minimum: int | None = None, maximum: int | None = None) -> Check:
    def check(v: Any, key: str) -> int:
        out = as_int(v, key, minimum)
        if maximum is not None and out > maximum:
            raise UserError(
                f"params.yaml: {key} must be at most {maximum:,} (time and memory grow with it), "
                f"got {out:,}"
            )
        return out

    return check


#: upper bounds of counts whose time or memory explodes (documented in params.yaml)
MAX_SEED = 2**32 - 1  # numpy's legacy seeding range
MAX_RESAMPLES = 1_000_000  # test.n_permutations, test.n_bootstrap: a float64 per resample and class
MAX_UNITS = 4096  # model.mlp.hidden2 and the first layer round(n_features * hidden1_ratio)
MAX_HIDDEN1_RATIO = 8.0
# explain.n_samples: float64 SHAP values rows x BAs x classes (1.6 GB at 512 BAs, 10 classes)
MAX_SHAP_ROWS = 20_000
MAX_BACKGROUND = 1000  # explain.background_size (shap advises 10..100 summary rows)
MAX_KERNEL_NSAMPLES = 100_000
MAX_KERNEL_WORK = (
    1_000_000  # kernel_nsamples x background_size: shap's float64 synthetic data (4 GB at 512 BAs)
)
MAX_SHAP_PERMUTATIONS = 1000
MAX_SLDA_PERMUTATIONS = 100_000
MAX_ITERATIONS = 10_000_000  # bayes.vi_iterations, bayes.draws, mlp.max_iter, logreg.max_iter
MAX_NULL_FITS = 1000


def _plain(v: Any, key: str) -> str:
    """A plain name (it reaches commands and file names): see :mod:`smp_balr.names`."""
    out = _text(v, key)
    where = "" if key == "data.name" else " (and in the labels CSV, if it names a column)"
    return check_name(out, f"params.yaml: {key}", f"rename it in {key}{where}")


def _plain_names(non_empty: bool = False) -> Check:
    def check(v: Any, key: str) -> tuple[str, ...]:
        if isinstance(v, str):
            raise UserError(
                f"params.yaml: {key} must be a list of names such as [{v}], "
                f"got the single text {v!r}; write it in brackets (DVC itself then stops with "
                f"\"'Value' object is not iterable\")"
            )
        out = _names(non_empty=non_empty)(v, key)
        for i, name in enumerate(out):
            check_name(
                name,
                f"params.yaml: {key}[{i + 1}]",
                f"rename it in {key} (and in the labels CSV, if it names a column)",
            )
        return out

    return check


def _number(
    low: float | None = None, high: float | None = None, above: float | None = None
) -> Check:
    def check(v: Any, key: str) -> float:
        out = as_float(v, key, low, high)
        if above is not None and out <= above:
            raise UserError(f"params.yaml: {key} must be greater than {above}, got {v!r}")
        return out

    return check


def _choice(allowed: tuple) -> Check:
    return lambda v, key: as_choice(v, key, allowed)


def _optional(check: Check) -> Check:
    return lambda v, key: None if v is None else check(v, key)


def _text(v: Any, key: str) -> str:
    if isinstance(v, bool) or not isinstance(v, (str, int, float)) or str(v).strip() == "":
        raise UserError(f"params.yaml: {key} must be a non-empty name, got {v!r}")
    return str(v)


def _names(allowed: tuple | None = None, non_empty: bool = False) -> Check:
    def check(v: Any, key: str) -> tuple[str, ...]:
        if v is None:
            v = []
        if not isinstance(v, list) or not all(
            isinstance(s, (str, int)) and not isinstance(s, bool) for s in v
        ):
            raise UserError(f"params.yaml: {key} must be a list of names such as [a, b], got {v!r}")
        out = tuple(str(s) for s in v)
        if non_empty and not out:
            raise UserError(f"params.yaml: {key} must name at least one entry")
        bad = [s for s in out if allowed is not None and s not in allowed]
        if bad:
            raise UserError(
                f"params.yaml: {key} lists '{bad[0]}'; the options are {', '.join(allowed)}"
            )
        if len(set(out)) != len(out):
            raise UserError(f"params.yaml: {key} lists an entry twice: {list(out)}")
        return out

    return check


def _values(allowed: tuple) -> Check:
    """A non-empty list of distinct values, each one of ``allowed`` (compared by type too)."""

    def check(v: Any, key: str) -> tuple:
        if not isinstance(v, list) or not v:
            raise UserError(
                f"params.yaml: {key} must be a non-empty list of {', '.join(map(str, allowed))}, "
                f"got {v!r}"
            )
        out = tuple(as_choice(x, f"{key}[{i + 1}]", allowed) for i, x in enumerate(v))
        if len(set(out)) != len(out):
            raise UserError(
                f"params.yaml: {key} lists an entry twice: {list(out)}; list each value once"
            )
        return out

    return check


def _seeds(v: Any, key: str) -> tuple[int, ...]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise UserError(
            f"params.yaml: {key} must be a list of seeds such as [1, 2], or []; got {v!r}"
        )
    out = tuple(as_int(x, f"{key}[{i + 1}]", 0) for i, x in enumerate(v))
    if len(set(out)) != len(out):
        raise UserError(f"params.yaml: {key} lists a seed twice: {list(out)}")
    return out


def _flag(v: Any, key: str) -> bool:
    if not isinstance(v, bool) and v not in (0, 1):
        raise UserError(f"params.yaml: {key} must be true or false, got {v!r}")
    return bool(v)


def _setting(
    default: Any, check: Check | None = None, factory: Callable[[], Any] | None = None
) -> Any:
    meta = {"check": check}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def build(cls: type, block: Any, key: str) -> Any:
    """Build settings dataclass ``cls`` from the params block ``block`` found at ``key``.

    Unknown keys are refused (naming the key and the known ones); a missing key takes the
    field's default; nested dataclass fields are built recursively.
    """
    block = check_keys(block, key, tuple(f.name for f in fields(cls)))
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.metadata.get("external"):
            continue
        name = f"{key}.{f.name}" if key else f.name
        nested = f.default_factory if f.default_factory is not MISSING else None
        if nested is not None and is_dataclass(nested):
            values[f.name] = build(nested, block.get(f.name), name)
        elif f.name in block:
            check = f.metadata.get("check")
            values[f.name] = check(block[f.name], name) if check else block[f.name]
    return cls(**values)


# --------------------------------------------------------------------------- blocks


def _source(v: Any, key: str) -> str | None:
    """A BA source path; null or ``''`` mean "not this source"."""
    return None if v is None or v == "" else _text(v, key)


@dataclass(frozen=True)
class DataSettings:
    """``data``: where the labels and BA vectors are, and how to format them.

    The BA vectors come from exactly one source: ``ba_dir`` (a folder of per-utterance
    files) or ``ba_table`` (one CSV or Parquet table); the other is null or ``''``.
    """

    name: str = _setting("demo", _plain)
    labels: str = _setting("data/demo/labels.csv", _text)
    ba_dir: str | None = _setting("data/demo/ba", _source)
    ba_table: str | None = _setting(None, _source)
    split: int = _setting(1, _choice((0, 1)))
    invert: int = _setting(0, _choice((0, 1)))

    def __post_init__(self) -> None:
        if self.ba_dir is not None and self.ba_table is not None:
            raise UserError(
                f"params.yaml: data.ba_dir ({self.ba_dir}) and data.ba_table ({self.ba_table}) "
                "are both set; keep the one that holds your BA vectors and write '' for the other"
            )
        if self.ba_dir is None and self.ba_table is None:
            raise UserError(
                "params.yaml: neither data.ba_dir nor data.ba_table is set; set data.ba_dir to a "
                "folder of <stem>_ba.txt/.pkl/.npy files or data.ba_table to a .csv/.parquet table "
                "of BA vectors"
            )


@dataclass(frozen=True)
class SldaSettings:
    """``selection.slda``: forward stepwise discriminant analysis."""

    p_enter: float = _setting(0.05, _number(0.0, 1.0))
    p_remove: float | None = _setting(None, _optional(_number(0.0, 1.0)))
    max_features: int | None = _setting(200, _optional(_whole(1)))
    permutations: int = _setting(199, _whole(0, MAX_SLDA_PERMUTATIONS))

    def __post_init__(self) -> None:
        if self.p_remove is not None and self.p_remove <= self.p_enter:
            raise UserError(
                f"params.yaml: selection.slda.p_remove ({self.p_remove}) must exceed p_enter "
                f"({self.p_enter}), or be null"
            )


@dataclass(frozen=True)
class BayesSettings:
    """``selection.bayes``: Bayesian logistic selection."""

    method: str = _setting("laplace", _choice(options.BAYES_METHODS))
    prior_sigma: float = _setting(1.0, _number(above=0.0))
    intercept_sigma: float = _setting(5.0, _number(above=0.0))
    p_direction: float = _setting(0.95, _number(0.5, 1.0))
    hdi_prob: float = _setting(0.95, _number(0.0, 1.0))
    max_rows: int | None = _setting(8000, _optional(_whole(2)))
    vi_iterations: int = _setting(20000, _whole(1, MAX_ITERATIONS))
    draws: int = _setting(1000, _whole(1, MAX_ITERATIONS))
    null_fits: int = _setting(2, _whole(0, MAX_NULL_FITS))


@dataclass(frozen=True)
class AllSettings:
    """``selection.all``: no settings (every BA not constant in the training rows)."""


@dataclass(frozen=True)
class CommonSettings:
    """``selection.common``: which selected-BA files of a label are intersected."""

    include: tuple[str, ...] = _setting((), _names())
    exclude: tuple[str, ...] = _setting(("_all_",), _names())


@dataclass(frozen=True)
class SelectionSettings:
    """``selection``: the select, common and selection_report stages."""

    selectors: tuple[str, ...] = _setting(
        options.SELECTORS, _names(options.SELECTORS, non_empty=True)
    )
    unit: str = _setting("auto", _choice(options.UNITS))
    correction: str = _setting("bonferroni", _choice(options.CORRECTIONS))
    all: AllSettings = _setting(None, factory=AllSettings)
    slda: SldaSettings = _setting(None, factory=SldaSettings)
    bayes: BayesSettings = _setting(None, factory=BayesSettings)
    common: CommonSettings = _setting(None, factory=CommonSettings)


@dataclass(frozen=True)
class AssociationSettings:
    """``association``: the per-BA association analysis (stages associate@<label> and profile)."""

    correction: str = _setting("maxt", _choice(options.ASSOCIATION_CORRECTIONS))
    permutations: int = _setting(499, _whole(1))
    bootstrap: int = _setting(499, _whole(0))
    alpha: float = _setting(0.05, _number(above=0.0, high=0.5))
    has_share: float = _setting(0.0, _number(0.0, 0.99))

    def __post_init__(self) -> None:
        if self.correction == "maxt" and (self.permutations + 1) * self.alpha < 1.0:
            raise UserError(
                f"params.yaml: association.permutations ({self.permutations}) is too few for "
                f"alpha {self.alpha}; use at least {int(-(-1.0 // self.alpha)) - 1}"
            )


@dataclass(frozen=True)
class MlpSettings:
    """``model.mlp``: the MLP of the original toolkit, early-stopped on held-out speakers."""

    hidden1_ratio: float = _setting(0.5, _number(high=MAX_HIDDEN1_RATIO, above=0.0))
    hidden2: int = _setting(16, _whole(1, MAX_UNITS))
    activation: str = _setting("relu", _choice(options.ACTIVATIONS))
    alpha: float = _setting(0.0001, _number(0.0))
    learning_rate: float = _setting(0.001, _number(above=0.0))
    batch_size: int = _setting(32, _whole(1))
    max_steps_per_epoch: int = _setting(2000, _whole(1, MAX_ITERATIONS))
    max_iter: int = _setting(100, _whole(1, MAX_ITERATIONS))
    early_stopping: int = _setting(1, _choice((0, 1)))
    validation_fraction: float = _setting(0.2, _number(above=0.0, high=1 - 1e-9))
    n_iter_no_change: int = _setting(10, _whole(1))
    tol: float = _setting(0.0001, _number(0.0))


def _grid(v: Any, key: str) -> dict[str, tuple]:
    if not isinstance(v, dict) or not v:
        raise UserError(
            f"params.yaml: {key} must map tree settings to lists of values, e.g. max_depth: [5, 10]"
        )
    out = {}
    for name, values in v.items():
        if not isinstance(values, list) or not values:
            raise UserError(
                f"params.yaml: {key}.{name} must be a non-empty list of values, got {values!r}"
            )
        out[str(name)] = tuple(values)
    return out


def _jobs(v: Any, key: str) -> int:
    out = as_int(v, key, -1)
    if out == 0:
        raise UserError(
            f"params.yaml: {key} must be -1 (all cores) or a positive number of processes, got 0"
        )
    return out


_DT_GRID = {"max_depth": (5, 10, 15), "min_samples_leaf": (1, 5), "criterion": ("gini", "entropy")}


@dataclass(frozen=True)
class DtSettings:
    """``model.dt``: decision tree tuned by a speaker-grouped grid search."""

    grid: dict[str, tuple] = _setting(None, _grid, factory=lambda: dict(_DT_GRID))
    cv_folds: int = _setting(5, _whole(2))
    scoring: str = _setting("balanced_accuracy", _text)
    n_jobs: int = _setting(2, _jobs)
    search: str = _setting("subsample", _choice(options.TREE_SEARCH))
    max_search_rows: int = _setting(20000, _whole(100))


@dataclass(frozen=True)
class LogregSettings:
    """``model.logreg``: the linear probe, its penalty chosen by speaker-grouped CV."""

    C: tuple[float, ...] = _setting((0.01, 0.1, 1.0), lambda v, key: _positive_list(v, key))
    cv_folds: int = _setting(5, _whole(2))
    max_iter: int = _setting(1000, _whole(1, MAX_ITERATIONS))


def _positive_list(v: Any, key: str) -> tuple[float, ...]:
    if not isinstance(v, list) or not v:
        raise UserError(
            f"params.yaml: {key} must be a non-empty list of positive numbers, got {v!r}"
        )
    return tuple(_number(above=0.0)(c, f"{key}[{i + 1}]") for i, c in enumerate(v))


@dataclass(frozen=True)
class ModelSettings:
    """``model``: which classifier and its settings."""

    method: str = _setting("mlp", _choice(options.MODEL_METHODS))
    mlp: MlpSettings = _setting(None, factory=MlpSettings)
    dt: DtSettings = _setting(None, factory=DtSettings)
    logreg: LogregSettings = _setting(None, factory=LogregSettings)


@dataclass(frozen=True)
class FeaturesSettings:
    """``features``: which BA list the model is trained on."""

    method: str = _setting("all", _choice(options.FEATURE_METHODS))


@dataclass(frozen=True)
class TrainSettings:
    """``train``: class balancing and the speakers filter."""

    balance: int = _setting(0, _choice(options.BALANCE))
    speakers: int = _setting(0, _choice((0, 1)))


@dataclass(frozen=True)
class TestSettings:
    """``test``: permutation test, speaker bootstrap and the verdict's level."""

    __test__ = False  # not a pytest class
    n_permutations: int = _setting(1000, _whole(1, MAX_RESAMPLES))
    n_bootstrap: int = _setting(1000, _whole(1, MAX_RESAMPLES))
    alpha: float = _setting(0.05, _number(above=0.0, high=0.5))


_BA_NAME = re.compile(r"^BA\d+$")


def _ba_names(v: Any, key: str) -> tuple[str, ...]:
    out = _names()(v, key)
    bad = [b for b in out if not _BA_NAME.match(b)]
    if bad:
        raise UserError(
            f"params.yaml: {key} lists '{bad[0]}', not a BA name; give names like [BA3, BA17] or []"
        )
    return out


@dataclass(frozen=True)
class ExplainSettings:
    """``explain``: SHAP values of the trained model on sampled test rows."""

    enabled: bool = _setting(True, _flag)
    n_samples: int = _setting(200, _whole(1, MAX_SHAP_ROWS))
    ba: tuple[str, ...] = _setting((), _ba_names)
    background: str = _setting("kmeans", _choice(options.BACKGROUNDS))
    background_size: int = _setting(20, _whole(1, MAX_BACKGROUND))
    mlp_explainer: str = _setting("permutation", _choice(options.AGNOSTIC_EXPLAINERS))
    permutations: int = _setting(1, _whole(1, MAX_SHAP_PERMUTATIONS))
    kernel_nsamples: int = _setting(1100, _whole(1, MAX_KERNEL_NSAMPLES))
    n_jobs: int = _setting(2, _jobs)

    def __post_init__(self) -> None:
        work = self.kernel_nsamples * self.background_size
        if self.mlp_explainer == "kernel" and work > MAX_KERNEL_WORK:
            raise UserError(
                f"params.yaml: explain.kernel_nsamples x explain.background_size is {work:,}, "
                f"above {MAX_KERNEL_WORK:,} (the kernel explainer holds every coalition x "
                "background row in memory); lower one of them"
            )


@dataclass(frozen=True)
class ParallelSettings:
    """``parallel``: where joblib runs the dt search and the SHAP rows.

    Either this machine or a Dask cluster.
    """

    backend: str = _setting("loky", _choice(options.PARALLEL_BACKENDS))
    address: str | None = _setting(None, _optional(_text))


ALL_CLASSES = "all"  # ``classes.<label>: all`` keeps every class of the label


def _classes(v: Any, key: str) -> dict[str, tuple[str, ...] | None]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise UserError(
            f"params.yaml: {key} must map labels to class lists, e.g. EmoClass: [A, H, N, S]; "
            f"got {v!r}"
        )
    out: dict[str, tuple[str, ...] | None] = {}
    for label, keep in v.items():
        label = check_name(
            str(label),
            f"params.yaml: {key} key",
            f"rename that label in {key} and in the labels CSV",
        )
        if keep == ALL_CLASSES:
            out[label] = None
            continue
        names = _names(non_empty=True)(keep, f"{key}.{label}")
        for i, name in enumerate(names):
            check_name(
                name,
                f"params.yaml: {key}.{label}[{i + 1}]",
                "rename that class in the labels CSV and here",
            )
        out[label] = names
    return out


@dataclass(frozen=True)
class StudySettings:
    """``study``: the configurations every label's study stage fits, tests and chooses among."""

    features: tuple[str, ...] = _setting(("all", "slda", "bayes"), _values(options.FEATURE_METHODS))
    model: tuple[str, ...] = _setting(options.MODEL_METHODS, _values(options.MODEL_METHODS))
    balance: tuple[int, ...] = _setting((0, 2), _values(options.BALANCE))
    seeds: tuple[int, ...] = _setting((), _seeds)
    n_jobs: int = _setting(2, _jobs)


@dataclass(frozen=True)
class ReportSettings:
    """``report``: the presence table's verdict and what the report flags."""

    alpha: float = _setting(0.05, _number(above=0.0, high=0.5))
    correction: str = _setting("holm", _choice(options.TABLE_CORRECTIONS))
    confound_v: float = _setting(0.9, _number(0.0, 1.0))
    min_speakers: int = _setting(5, _whole(1))
    top_shap: int = _setting(10, _whole(1))
    beyond_v: float = _setting(0.3, _number(0.0, 1.0))
    beyond_min_speakers: int = _setting(2, _whole(1))


# --------------------------------------------------------------------------- demo

DEMO_LABELS = ("Language", "Modality", "EmoClass")  # the demo labels that may have planted BAs

# the correlated block of the demo (off by default: ``demo.correlated.n_ba: 0``): BAs
# thresholded from one low-rank continuous latent, as BA-LR's attributes are thresholded
# outputs of one embedding
CORRELATED_DEFAULTS: dict[str, Any] = {
    "n_ba": 0,  # BAs of the block, after the demo's own (BA<n_ba> ...); 0: no block, no labels
    "rank": 8,  # latent factors (2 carry the labels, the rest make the BAs correlated)
    "carriers": 16,  # BAs loading on each label factor (disjoint; the truth of Whisper and Gender)
    "within_effect": 1.5,  # shift of factor 0 in Whisper utterances (latent sd units)
    "speaker_effect": 3.0,  # shift of factor 1 between M and F speakers (latent sd units)
    "noise_sd": 0.7,  # independent noise of each BA's continuous value
    "speaker_sd": 1.0,  # spread of the speakers' factor scores (utterance scores have sd 1)
}


@dataclass(frozen=True)
class DemoSettings:
    """Generating settings (the ``demo`` section of params.yaml plus ``seed``)."""

    seed: int = 42
    n_speakers: int = 60
    n_test_speakers: int = 16
    utterances_per_speaker: int = 200
    n_ba: int = 512
    planted: dict[str, int] = field(
        default_factory=lambda: {"Language": 10, "Modality": 12, "EmoClass": 20}
    )
    n_constant: int = 12
    speaker_sd: float = 1.0  # spread of speaker profiles (logit)
    language_effect: float = 2.5  # scale of the Language shifts (logit, speaker level)
    utterance_effect: float = 1.2  # scale of the Modality / EmoClass shifts (logit)
    missing_class_fraction: float = 0.25  # speakers lacking one main EmoClass / never singing
    correlated: dict[str, Any] = field(
        default_factory=lambda: dict(CORRELATED_DEFAULTS)
    )  # see CORRELATED_DEFAULTS

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "DemoSettings":
        """Build from the parsed params (``seed`` and the ``demo`` section), validating values."""
        demo = dict(params.get("demo") or {})
        known = {f for f in cls.__dataclass_fields__ if f != "seed"}
        unknown = sorted(set(demo) - known)
        if unknown:
            raise UserError(
                f"params.yaml: unknown demo key(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        planted = {**cls().planted, **(demo.pop("planted", None) or {})}
        correlated = demo.pop("correlated", None) or {}
        extra = sorted(set(correlated) - set(CORRELATED_DEFAULTS))
        if extra:
            raise UserError(
                f"params.yaml: unknown demo.correlated key(s) {', '.join(extra)}; known: "
                f"{', '.join(CORRELATED_DEFAULTS)}"
            )
        s = cls(
            seed=int(params.get("seed", 42)),
            planted=planted,
            correlated={**CORRELATED_DEFAULTS, **correlated},
            **demo,
        )
        s.validate()
        return s

    def validate(self) -> None:
        """Raise a :class:`UserError` for settings that cannot make a usable corpus."""
        if self.n_speakers < 8:
            raise UserError(
                f"params.yaml: demo.n_speakers must be at least 8, got {self.n_speakers}"
            )
        if not 4 <= self.n_test_speakers <= self.n_speakers - 4:
            raise UserError(
                f"params.yaml: demo.n_test_speakers must be between 4 and n_speakers - 4, "
                f"got {self.n_test_speakers}"
            )
        if self.utterances_per_speaker < 10:
            raise UserError(
                f"params.yaml: demo.utterances_per_speaker must be at least 10, "
                f"got {self.utterances_per_speaker}"
            )
        rows = self.n_speakers * self.utterances_per_speaker
        if rows > MAX_DEMO_ROWS or self.n_ba > MAX_DEMO_BA:
            raise UserError(
                f"params.yaml: the demo may have at most {MAX_DEMO_ROWS:,} utterances "
                f"(n_speakers x utterances_per_speaker, got {rows:,}) and {MAX_DEMO_BA:,} BAs "
                f"(n_ba, got {self.n_ba:,}); one file each"
            )
        unknown = sorted(set(self.planted) - set(DEMO_LABELS))
        if unknown:
            raise UserError(
                f"params.yaml: demo.planted has unknown label(s) {', '.join(unknown)}; "
                f"labels: {', '.join(DEMO_LABELS)}"
            )
        corr = {**CORRELATED_DEFAULTS, **(self.correlated or {})}
        c_ba, rank, carriers = int(corr["n_ba"]), int(corr["rank"]), int(corr["carriers"])
        if c_ba < 0 or (c_ba > 0 and (rank < 2 or carriers < 1 or 2 * carriers > c_ba)):
            raise UserError(
                f"params.yaml: demo.correlated needs n_ba >= 0 and, when n_ba > 0, rank >= 2 and "
                f"1 <= carriers <= n_ba / 2; got n_ba {c_ba}, rank {rank}, carriers {carriers}"
            )
        need = sum(int(v) for v in self.planted.values()) + self.n_constant
        if self.n_ba < 8 or need > self.n_ba // 2:
            raise UserError(
                f"params.yaml: demo.n_ba ({self.n_ba}) must be at least twice the planted + "
                f"constant BAs ({need})"
            )


MAX_DEMO_ROWS = (
    10_000_000  # utterances, one BA file each (the format stage holds rows x n_ba bytes twice)
)
MAX_DEMO_BA = 4096


@dataclass(frozen=True)
class Settings:
    """The whole of params.yaml, validated.

    Attributes mirror the top-level keys; ``demo`` is :class:`DemoSettings`.
    """

    seed: int = _setting(42, _whole(0, MAX_SEED))
    label: str = _setting("EmoClass", _plain)
    labels: tuple[str, ...] = _setting(
        ("EmoClass", "Language", "Modality", "Noise"), _plain_names(non_empty=True)
    )
    classes: dict[str, tuple[str, ...] | None] = _setting(
        None,
        _classes,
        factory=lambda: {
            "EmoClass": ("A", "H", "N", "S"),
            "Language": None,
            "Modality": None,
            "Noise": None,
        },
    )
    data: DataSettings = _setting(None, factory=DataSettings)
    selection: SelectionSettings = _setting(None, factory=SelectionSettings)
    association: AssociationSettings = _setting(None, factory=AssociationSettings)
    features: FeaturesSettings = _setting(None, factory=FeaturesSettings)
    model: ModelSettings = _setting(None, factory=ModelSettings)
    train: TrainSettings = _setting(None, factory=TrainSettings)
    test: TestSettings = _setting(None, factory=TestSettings)
    explain: ExplainSettings = _setting(None, factory=ExplainSettings)
    parallel: ParallelSettings = _setting(None, factory=ParallelSettings)
    study: StudySettings = _setting(None, factory=StudySettings)
    report: ReportSettings = _setting(None, factory=ReportSettings)
    demo: Any = field(
        default_factory=DemoSettings, metadata={"external": True}
    )  # built by DemoSettings.from_params

    def class_filter(self, label: str) -> list[str] | None:
        """The classes kept for ``label`` (``classes.<label>``), or None to keep all."""
        keep = self.classes.get(label)
        return None if keep is None else list(keep)

    def require_label(self, label: str) -> str:
        """``label`` if it is a plain name and one of ``labels``, else one line saying so.

        ``label`` is a stage's argument.
        """
        label = check_name(label, "argument", "rename the label in params.yaml")
        if label not in self.labels:
            raise UserError(
                f"label '{label}' is not in labels {list(self.labels)} of params.yaml; "
                "add it there or use one of them"
            )
        return label

    def check_relations(self) -> None:
        """Raise a :class:`UserError` when blocks disagree (before any stage runs)."""
        if self.label not in self.labels:
            raise UserError(
                f"params.yaml: label '{self.label}' is not in labels {list(self.labels)}: "
                f"the select stages run only for those; add '{self.label}' to labels "
                "or set label to one of them"
            )
        missing = [lab for lab in self.labels if lab not in self.classes]
        if missing:
            raise UserError(
                f"params.yaml: classes has no entry for label '{missing[0]}'; "
                f"add `{missing[0]}: all` under classes "
                "(keep every class) or list the classes to keep, e.g. [A, B]"
            )
        method = self.features.method
        produced = set(self.selection.selectors) | {"common"}
        if method not in produced:
            raise UserError(
                f"params.yaml: features.method is '{method}', but selection.selectors "
                f"{list(self.selection.selectors)} does not run it; add '{method}' to "
                f"selection.selectors or choose one of {', '.join(sorted(produced))}"
            )
        check_permutations(self.test.n_permutations, self.report.alpha, len(self.labels))
        unrun = [m for m in self.study.features if m not in produced]
        if unrun:
            raise UserError(
                f"params.yaml: study.features lists '{unrun[0]}', but selection.selectors "
                f"{list(self.selection.selectors)} does not run it; add '{unrun[0]}' to "
                f"selection.selectors or use {', '.join(sorted(produced))}"
            )


def check_dvc_sources(params: dict[str, Any]) -> None:
    """Refuse a null ``data.ba_dir`` / ``data.ba_table`` under ``dvc repro`` (write ``''`` instead).

    dvc.yaml tracks the BA source as the one path ``${data.ba_dir}${data.ba_table}``, and DVC
    writes a null value into a path as ``None``: the pipeline would then miss a file "…None".
    """
    data = params.get("data") if isinstance(params.get("data"), dict) else {}
    for key in ("ba_dir", "ba_table"):
        if key in data and data[key] is None:
            raise UserError(
                f"params.yaml: data.{key} is null; under dvc repro write data.{key}: '' for the "
                "BA source you do not use (dvc.yaml tracks the path "
                "${data.ba_dir}${data.ba_table}, where DVC would read null as 'None')"
            )


#: top-level keys that belong to tools other than the stages (read by their own modules)
EXTRA_BLOCKS: tuple[str, ...] = ()


def settings_from_params(params: dict[str, Any]) -> Settings:
    """Validate parsed params and return :class:`Settings` (see :func:`load_settings`)."""
    known = tuple(f.name for f in fields(Settings)) + EXTRA_BLOCKS
    check_keys(params, "", known)
    settings = build(
        Settings, {k: v for k, v in params.items() if k not in EXTRA_BLOCKS + ("demo",)}, ""
    )
    demo = DemoSettings.from_params({"seed": settings.seed, "demo": params.get("demo")})
    settings = replace(settings, demo=demo)
    settings.check_relations()
    return settings


def load_settings(path: str | Path = DEFAULT_PARAMS) -> Settings:
    """Read and validate ``params.yaml`` as a whole.

    Parameters
    ----------
    path : str or Path
        The parameter file (``params.yaml`` in the working directory by default).

    Returns
    -------
    Settings

    Raises
    ------
    UserError
        One line naming the first unknown key, wrongly typed or out-of-range value, or
        disagreement between blocks.
    """
    return settings_from_params(load_params(path))
