import numpy as np

from smp_balr.selection.allsel import all_features


def test_all_drops_constant_columns_and_reports_rates():
    X = np.array([[1, 0, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]])
    out = all_features(X, ["BA0", "BA1", "BA2"])
    assert list(out["Feature"]) == ["BA1", "BA2"]
    np.testing.assert_allclose(out["Rate"], [0.5, 0.5])
    assert all_features(np.zeros((0, 2)), ["BA0", "BA1"]).empty
