"""``common``: intersection of feature files chosen by include/exclude name strings."""

from __future__ import annotations

import pandas as pd
import pytest

from smp_balr.core.errors import UserError
from smp_balr.selection.common import intersect, label_common, matching_files


@pytest.fixture
def feature_dir(tmp_path):
    files = {
        "EmoClass_slda_features.csv": ["BA5", "BA1", "BA9", "BA3"],
        "EmoClass_bayes_features.csv": ["BA1", "BA3", "BA7", "BA5"],
        "EmoClass_all_features.csv": ["BA1", "BA2", "BA3"],
        "Language_slda_features.csv": ["BA5", "BA8"],
        "EmoClass_empty_features.csv": [],
    }
    for name, feats in files.items():
        pd.DataFrame({"Feature": feats, "Score": range(len(feats))}).to_csv(
            tmp_path / name, index=False
        )
    (tmp_path / "notes.txt").write_text("not a feature file")
    return tmp_path


def test_include_exclude_and_order_of_first_file(feature_dir):
    files = matching_files(feature_dir, ["EmoClass_"], ["_all_", "_empty_"])
    assert [p.name for p in files] == ["EmoClass_bayes_features.csv", "EmoClass_slda_features.csv"]
    table = intersect(files)
    assert list(table["Feature"]) == ["BA1", "BA3", "BA5"]  # order of the first (bayes) file
    assert set(table["N_Files"]) == {2}


def test_only_current_selectors_of_the_label_count_and_empty_file_empties_intersection(feature_dir):
    table, used = label_common(feature_dir, "EmoClass", ["slda", "empty", "all"], [], ["_all_"])
    assert [p.name for p in used] == ["EmoClass_empty_features.csv", "EmoClass_slda_features.csv"]
    assert table.empty and list(table.columns) == ["Feature", "N_Files"]
    # bayes is not a current selector: its file never counts, although it matches
    table, used = label_common(feature_dir, "EmoClass", ["slda", "all"])
    assert [p.name for p in used] == ["EmoClass_slda_features.csv"]
    assert list(table["Feature"]) == ["BA5", "BA1", "BA9", "BA3"]


def test_label_prefix_is_always_required_and_include_must_all_match(feature_dir):
    # Language_slda matches include [_slda_] but belongs to another label
    table, used = label_common(feature_dir, "EmoClass", ["slda", "bayes", "all"], ["_slda_"], [])
    assert [p.name for p in used] == ["EmoClass_slda_features.csv"]
    table, used = label_common(feature_dir, "EmoClass", ["slda", "bayes", "all"], [], [])
    assert len(used) == 3 and list(table["Feature"]) == [
        "BA1",
        "BA3",
    ]  # order of the first (all) file
    assert set(table["N_Files"]) == {3}


def test_no_matching_file_is_one_clear_error(feature_dir):
    with pytest.raises(
        UserError, match="label 'EmoClass': include/exclude matching no file"
    ) as err:
        label_common(feature_dir, "EmoClass", ["slda", "bayes"], ["_lasso_"], [])
    assert "\n" not in str(err.value) and "['_lasso_']" in str(err.value)
    with pytest.raises(UserError, match="include/exclude matching no file"):
        label_common(feature_dir, "Modality", ["slda"])  # no file of that label at all


def test_file_without_feature_column(tmp_path):
    pd.DataFrame({"BA": ["BA1"]}).to_csv(tmp_path / "X_slda_features.csv", index=False)
    with pytest.raises(UserError, match="has no 'Feature' column"):
        label_common(tmp_path, "X", ["slda"])
