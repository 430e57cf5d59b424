import numpy as np

from benchmarks.support.planted import make_planted
from smp_balr.selection.units import mixed_speakers


def test_planted_table_shape_truth_and_speaker_levels():
    p = make_planted(n_speakers=10, per_speaker=30, n_ba=25, n_planted=5, n_classes=3, seed=2)
    t = p.table
    assert t.shape == (300, 3 + 25) and list(t.columns[:3]) == ["FileName", "Speaker", "Label"]
    assert len(p.truth) == 5 and set(p.truth) <= set(t.columns)
    assert set(np.unique(t.filter(like="BA").to_numpy())) <= {0, 1}
    assert mixed_speakers(t["Speaker"].to_numpy(), t["Label"].to_numpy())[0] > 0
    s = make_planted(
        n_speakers=10, per_speaker=5, n_ba=5, n_planted=1, speaker_level=True, seed=2
    ).table
    assert mixed_speakers(s["Speaker"].to_numpy(), s["Label"].to_numpy()) == (0, 10)
