"""``common``: intersection of feature files chosen by include/exclude name strings."""

from __future__ import annotations

import pandas as pd
import pytest

from smp_balr.errors import UserError
from smp_balr.selection.common import common_features, intersect, matching_files


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
        pd.DataFrame({"Feature": feats, "Score": range(len(feats))}).to_csv(tmp_path / name, index=False)
    (tmp_path / "notes.txt").write_text("not a feature file")
    return tmp_path


def test_include_exclude_and_order_of_first_file(feature_dir):
    files = matching_files(feature_dir, ["EmoClass_"], ["_all_", "_empty_"])
    assert [p.name for p in files] == ["EmoClass_bayes_features.csv", "EmoClass_slda_features.csv"]
    table = intersect(files)
    assert list(table["Feature"]) == ["BA1", "BA3", "BA5"]  # order of the first (bayes) file
    assert set(table["N_Files"]) == {2}


def test_candidates_restrict_files_and_empty_file_empties_intersection(feature_dir):
    files = matching_files(feature_dir, ["EmoClass_"], ["_all_"], candidates=["EmoClass_slda_features.csv", "EmoClass_empty_features.csv"])
    assert len(files) == 2
    table, used = common_features(feature_dir, "x", ["EmoClass_"], ["_all_"], candidates=[p.name for p in files])
    assert table.empty and len(used) == 2


def test_multiple_include_strings_must_all_match(feature_dir):
    table, used = common_features(feature_dir, "slda_common", ["_slda_"], [])
    assert [p.name for p in used] == ["EmoClass_slda_features.csv", "Language_slda_features.csv"]
    assert list(table["Feature"]) == ["BA5"]


def test_no_matching_file_is_one_clear_error(feature_dir):
    with pytest.raises(UserError, match="selection.common 'Foo_common': no feature file .* contains \\['Foo_'\\]"):
        common_features(feature_dir, "Foo_common", ["Foo_"], [])


def test_file_without_feature_column(tmp_path):
    pd.DataFrame({"BA": ["BA1"]}).to_csv(tmp_path / "X_slda_features.csv", index=False)
    with pytest.raises(UserError, match="has no 'Feature' column"):
        common_features(tmp_path, "X_common", ["X_"])
