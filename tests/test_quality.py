from smp_balr.selection.quality import precision_recall


def test_precision_recall_counts():
    q = precision_recall(["BA1", "BA2", "BA2", "BA9"], ["BA1", "BA2", "BA3", "BA4"])
    assert q == {
        "n_selected": 3,
        "n_truth": 4,
        "true_positives": 2,
        "precision": 2 / 3,
        "recall": 0.5,
    }
    assert precision_recall([], ["BA1"])["precision"] is None
    assert precision_recall(["BA1"], [])["recall"] is None
