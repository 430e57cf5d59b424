"""Benchmark Step 1: format 20,000 BA files (mixed .txt/.pkl, (D,) and (D, 2), ints and floats).

Prints the median of 3 runs of reading + matching + writing the train/test tables,
and the process's peak resident memory.
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
import statistics
import tempfile
import time
from pathlib import Path

from smp_balr.core.settings import DemoSettings
from smp_balr.data.demo import generate, write_corpus
from smp_balr.data.formatting import format_corpus, write_tables

N_SPEAKERS, UTTERANCES, REPEATS = 100, 200, 3


def make_files(tmp_path: Path) -> None:
    """Write the corpus (run in a child process so its memory does not count below)."""
    settings = DemoSettings(
        n_speakers=N_SPEAKERS, n_test_speakers=25, utterances_per_speaker=UTTERANCES
    )
    corpus = generate(settings)
    write_corpus(
        corpus,
        tmp_path / "ba",
        tmp_path / "labels.csv",
        tmp_path / "truth.json",
        seed=settings.seed,
    )


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        settings = DemoSettings()
        t0 = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(target=make_files, args=(tmp_path,))
        child.start()
        child.join()
        made = time.perf_counter() - t0
        n_files = sum(1 for _ in (tmp_path / "ba").rglob("*_ba.*"))
        print(f"made {n_files} BA files (D = {settings.n_ba}) in {made:.1f} s")
        times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            tables, report = format_corpus(
                tmp_path / "labels.csv", tmp_path / "ba", split=True, progress=False
            )
            write_tables(
                {tmp_path / "train.csv": tables["train"], tmp_path / "test.csv": tables["test"]}
            )
            times.append(time.perf_counter() - t0)
        assert report.n_matched == n_files
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"format {n_files} files: median {statistics.median(times):.2f} s over {REPEATS} runs "
            f"({', '.join(f'{t:.2f}' for t in times)}); peak RSS {peak_mb:.0f} MB"
        )


if __name__ == "__main__":
    main()
