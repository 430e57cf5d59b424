"""A synthetic corpus in balr's on-disk formats with planted ground truth.

Every BA ``j`` of utterance ``i`` by speaker ``k`` is drawn as a Bernoulli with logit

    base[j] + speaker[k, j] + Language[lang(k), j] + Modality[mod(i), j] + EmoClass[emo(i), j]

* ``base`` gives widely varied activation rates (Beta(0.6, 0.6) on the probability scale);
  a few BAs are constant (always 0 or always 1).
* ``speaker`` is each speaker's own profile (normal, BA-specific spread): BAs are
  speaker-discriminative, as real BALR attributes are.
* The label terms are zero except on the label's *planted* BAs (disjoint sets):
  ``Language`` (speaker level, 4 unbalanced classes) shifts a speaker's profile;
  ``Modality`` (Speech/Sing) and ``EmoClass`` (A/H/N/S, plus rare X/U with no effect)
  shift single utterances.
* ``Noise`` (Heads/Tails, a fair coin per utterance from its own random stream) has no
  effect on any BA: a label on which every "present" claim is a false positive.
* Each speaker's class mix is skewed (Dirichlet/Beta draws) and some speakers lack some
  classes entirely, so BAs that merely mark speakers correlate with the utterance labels
  across utterances: the speaker confound later stages must handle.

* The correlated block (``demo.correlated``, off by default, when it is off the corpus is
  byte for byte what it was without it): ``n_ba`` more BAs thresholded from one low-rank
  continuous latent (factor loadings x factor scores + noise), and two more labels carried
  by latent factors, not by independent BAs: ``Whisper`` (Normal/Whisper, per utterance,
  factor 0) and ``Gender`` (F/M, per speaker, factor 1). Their truth is the BAs loading on
  the factor; every BA of the block is correlated with the others through the shared factors.

Files: FileName ``spk07/spk07_utt0003.wav`` (folder speakers) or ``spk07_utt0003.flac``;
BA files ``<stem>_ba.txt`` / ``<stem>_ba.pkl`` in shapes (D,) and (D, 2), some as floats.
"""

from __future__ import annotations

import json
import logging
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from smp_balr.core import paths
from smp_balr.core.errors import UserError
from smp_balr.core.outputs import transaction
from smp_balr.core.settings import CORRELATED_DEFAULTS, DemoSettings
from smp_balr.core.settings import DEMO_LABELS as LABELS

log = logging.getLogger(__name__)

LANGUAGES = ("English", "French", "Mandarin", "Spanish")
LANGUAGE_P = (0.40, 0.30, 0.20, 0.10)
MODALITIES = ("Speech", "Sing")
EMOTIONS = ("A", "H", "N", "S", "X", "U")
EMOTION_P = (0.13, 0.22, 0.42, 0.15, 0.04, 0.04)
MAIN_EMOTIONS = ("A", "H", "N", "S")
NOISE = "Noise"  # a label with no signal: drawn per utterance, independent of everything else
NOISE_CLASSES = ("Heads", "Tails")

# the correlated block (off by default: ``demo.correlated.n_ba: 0``): BAs thresholded from one
# low-rank continuous latent, as BA-LR's attributes are thresholded outputs of one embedding
CORRELATED_LABELS = (
    "Whisper",
    "Gender",
)  # carried by latent factor 0 (within speakers) and 1 (speaker level)
WHISPER_CLASSES = ("Normal", "Whisper")
GENDER_CLASSES = ("F", "M")

# file variants: (extension, shape, dtype); chosen per file from the seed
VARIANTS = (
    ("txt", "D", "int"),  # one value per line: 0 / 1
    ("txt", "D", "float"),  # np.savetxt default: 1.000000000000000000e+00
    ("txt", "D2", "int"),  # "1 0" per line: attribute, complement
    ("pkl", "D", "float"),
    ("pkl", "D", "int"),
    ("pkl", "D2", "float"),
)


@dataclass
class DemoCorpus:
    """The generated corpus in memory."""

    labels: pd.DataFrame  # FileName, Speaker, Group, Language, Modality, EmoClass, Noise
    ba: np.ndarray  # int8 (utterances, D), row-aligned with labels
    truth: dict[str, Any]  # {label: [BA names], ..., "settings": {...}}


def _split_counts(total: int, probs: tuple[float, ...], minimum: int) -> np.ndarray:
    """Integer counts summing to ``total``, proportional to ``probs``, each at least ``minimum``."""
    counts = np.maximum(np.floor(np.asarray(probs) * total).astype(int), minimum)
    while counts.sum() > total:
        counts[np.argmax(counts)] -= 1
    i = 0
    while counts.sum() < total:
        counts[i % len(counts)] += 1
        i += 1
    return counts


@dataclass
class _Plan:
    """Everything of a corpus but its BA bits, which :meth:`blocks` draws speaker by speaker."""

    settings: DemoSettings
    labels: pd.DataFrame  # sorted by FileName
    position: np.ndarray  # position[r]: row of utterance r (speaker-major order) in ``labels``
    truth: dict[str, Any]
    bits_state: dict[str, Any]  # bit generator state at the first BA draw
    base: np.ndarray
    profile: np.ndarray
    lang_of: np.ndarray
    lang_shift: np.ndarray
    mod: np.ndarray
    mod_shift: np.ndarray
    emo: np.ndarray
    emo_shift: np.ndarray
    constant: np.ndarray
    constant_value: np.ndarray
    corr: dict[str, Any] | None = None  # the correlated block (None when off)

    def blocks(self, speakers_per_block: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(rows, ba)`` per block of speakers: rows (speaker-major) and their int8 BAs.

        The uniform draws run through the generator in the same order as one draw of the
        whole (utterances, BAs) matrix, so the bits do not depend on the block size.
        """
        s = self.settings
        U, K, D = s.utterances_per_speaker, s.n_speakers, s.n_ba
        rng = np.random.default_rng(s.seed)
        rng.bit_generator.state = self.bits_state
        step = max(1, int(speakers_per_block))
        for k0 in range(0, K, step):
            k1 = min(K, k0 + step)
            rows = np.arange(k0 * U, k1 * U)
            spk = rows // U
            logit = (
                self.base
                + self.profile[spk]
                + self.lang_shift[self.lang_of[spk]]
                + self.mod_shift[self.mod[rows]]
                + self.emo_shift[self.emo[rows]]
            )
            ba = (rng.random((rows.size, D)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
            ba[:, self.constant] = self.constant_value
            if self.corr is not None:
                ba = np.hstack([ba, _correlated_bits(self.corr, s, k0, k1)])
            yield rows, ba


def _plan(settings: DemoSettings) -> _Plan:
    """Draw every part of the corpus except the BA bits (see :func:`generate`).

    One generator draws everything in a fixed order (BAs, speakers, label shifts, class
    mixes, the BA bits, file extensions): each helper below takes its turn on it, so the
    order of the calls is part of the corpus.
    """
    s = settings
    rng = np.random.default_rng(s.seed)
    D, K, U = s.n_ba, s.n_speakers, s.utterances_per_speaker
    base, planted, constant, constant_value = _draw_bas(rng, s)
    speakers, lang_of, is_test, profile = _draw_speakers(rng, s)
    lang_shift, mod_shift, emo_shift = _draw_shifts(rng, s, planted)
    emo, mod = _draw_classes(rng, s)
    # The BA bits come next in the stream: one uniform per (utterance, BA), speaker-major.
    # Keep the state for Plan.blocks and jump over those draws (one 64-bit output each)
    # to the file-extension draw that follows them.
    bits_state = rng.bit_generator.state
    rng.bit_generator.advance(K * U * D)
    names = _draw_file_names(rng, s, speakers)
    corr = _correlated_plan(s, lang_of.size) if int(s.correlated.get("n_ba", 0)) > 0 else None
    labels = _labels_frame(s, names, speakers, is_test, lang_of, mod, emo, corr)
    order = np.argsort(labels["FileName"].to_numpy(dtype=object), kind="stable")
    labels = labels.iloc[order].reset_index(drop=True)
    position = np.empty(K * U, dtype=np.int64)
    position[order] = np.arange(K * U)
    return _Plan(
        settings=s,
        labels=labels,
        position=position,
        truth=_truth(s, planted, constant, corr),
        bits_state=bits_state,
        base=base,
        profile=profile,
        lang_of=lang_of,
        lang_shift=lang_shift,
        mod=mod,
        mod_shift=mod_shift,
        emo=emo,
        emo_shift=emo_shift,
        constant=constant,
        constant_value=constant_value,
        corr=corr,
    )


def _draw_bas(
    rng: np.random.Generator, s: DemoSettings
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Base logits of the BAs, the planted BAs of each label, the constant BAs and their values."""
    D = s.n_ba
    rate = np.clip(rng.beta(0.6, 0.6, size=D), 0.01, 0.99)
    base = np.log(rate / (1 - rate))
    mid = np.flatnonzero((rate > 0.2) & (rate < 0.8))  # planted BAs: rates where a shift shows
    n_planted = {lab: int(s.planted.get(lab, 0)) for lab in LABELS}
    if sum(n_planted.values()) > mid.size:
        raise UserError(f"params.yaml: too many planted BAs for demo.n_ba {D}; lower demo.planted")
    pool = rng.permutation(mid)
    planted: dict[str, np.ndarray] = {}
    start = 0
    for lab in LABELS:
        planted[lab] = np.sort(pool[start : start + n_planted[lab]])
        start += n_planted[lab]
    taken = np.concatenate(list(planted.values()))
    rest = np.setdiff1d(np.arange(D), taken)
    constant = np.sort(rng.choice(rest, size=s.n_constant, replace=False))
    constant_value = (np.arange(s.n_constant) % 2).astype(np.int8)  # half always 0, half always 1
    return base, planted, constant, constant_value


def _draw_speakers(
    rng: np.random.Generator, s: DemoSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Speaker names, each speaker's language, whether they are a test speaker, their profile."""
    D, K = s.n_ba, s.n_speakers
    width = max(2, len(str(K - 1)))
    speakers = np.array([f"spk{k:0{width}d}" for k in range(K)])
    lang_of = rng.permutation(np.repeat(np.arange(4), _split_counts(K, LANGUAGE_P, 2)))
    is_test = np.zeros(K, dtype=bool)
    test_counts = _split_counts(s.n_test_speakers, LANGUAGE_P, 1)
    for c in range(4):
        members = np.flatnonzero(lang_of == c)
        n_take = min(test_counts[c], members.size - 1)
        is_test[rng.choice(members, size=n_take, replace=False)] = True
    short = s.n_test_speakers - int(is_test.sum())  # rounding: top up from the largest classes
    for k in rng.permutation(np.flatnonzero(~is_test))[: max(short, 0)]:
        is_test[k] = True
    spk_sd = s.speaker_sd * rng.uniform(0.5, 1.5, size=D)
    profile = rng.normal(0.0, 1.0, size=(K, D)) * spk_sd
    return speakers, lang_of, is_test, profile


def _draw_shifts(
    rng: np.random.Generator, s: DemoSettings, planted: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logit shifts of the planted BAs per Language, Modality and EmoClass class."""
    D = s.n_ba
    lang_shift = np.zeros((4, D))
    raw = rng.normal(size=(4, planted["Language"].size))
    raw -= raw.mean(axis=0)
    raw /= np.abs(raw).max(axis=0)  # largest |shift| per BA = language_effect
    lang_shift[:, planted["Language"]] = s.language_effect * raw

    mod_shift = np.zeros((2, D))
    sign = rng.choice([-1.0, 1.0], size=planted["Modality"].size)
    mag = s.utterance_effect * rng.uniform(1.0, 1.4, size=planted["Modality"].size)
    mod_shift[1, planted["Modality"]] = sign * mag  # Sing vs Speech

    emo_shift = np.zeros((len(EMOTIONS), D))
    for i, j in enumerate(planted["EmoClass"]):
        marked = i % 4  # each main class gets its own BAs (A, H, N, S in turn)
        emo_shift[marked, j] = rng.choice([-1.0, 1.0]) * s.utterance_effect * rng.uniform(1.0, 1.4)
    return lang_shift, mod_shift, emo_shift


def _draw_classes(rng: np.random.Generator, s: DemoSettings) -> tuple[np.ndarray, np.ndarray]:
    """EmoClass and Modality of every utterance (speaker-major), from skewed per-speaker mixes."""
    K, U = s.n_speakers, s.utterances_per_speaker
    n_miss = int(round(s.missing_class_fraction * K))
    lacks_emo = np.full(K, -1)
    # the right-hand side is drawn first (A, H or S), then the speakers that lack it
    lacks_emo[rng.choice(K, size=n_miss, replace=False)] = rng.choice([0, 1, 3], size=n_miss)
    speech_only = np.zeros(K, dtype=bool)
    speech_only[rng.choice(K, size=n_miss, replace=False)] = True
    emo = np.empty(K * U, dtype=int)
    mod = np.empty(K * U, dtype=int)
    for k in range(K):
        p_emo = rng.dirichlet(4.0 * np.asarray(EMOTION_P))
        if lacks_emo[k] >= 0:
            p_emo[lacks_emo[k]] = 0.0
        p_emo /= p_emo.sum()
        emo[k * U : (k + 1) * U] = rng.choice(len(EMOTIONS), size=U, p=p_emo)
        p_sing = 0.0 if speech_only[k] else rng.beta(1.2, 2.0)
        mod[k * U : (k + 1) * U] = (rng.random(U) < p_sing).astype(int)
    return emo, mod


def _draw_file_names(rng: np.random.Generator, s: DemoSettings, speakers: np.ndarray) -> list[str]:
    """FileName of every utterance (speaker-major): a speaker folder or not, .wav or .flac."""
    K, U = s.n_speakers, s.utterances_per_speaker
    rows_spk = np.repeat(np.arange(K), U)
    utt_width = max(4, len(str(U - 1)))
    in_folder = np.arange(K) % 2 == 0  # even speakers: FileName with a speaker folder
    ext = np.where(rng.random(K * U) < 0.85, ".wav", ".flac")
    names = []
    for r in range(K * U):
        k = rows_spk[r]
        stem = f"{speakers[k]}_utt{r - k * U:0{utt_width}d}"
        names.append(f"{speakers[k]}/{stem}{ext[r]}" if in_folder[k] else f"{stem}{ext[r]}")
    return names


def _labels_frame(
    s: DemoSettings,
    names: list[str],
    speakers: np.ndarray,
    is_test: np.ndarray,
    lang_of: np.ndarray,
    mod: np.ndarray,
    emo: np.ndarray,
    corr: dict[str, Any] | None,
) -> pd.DataFrame:
    """The labels table in speaker-major order (the Noise column from its own random stream)."""
    K, U = s.n_speakers, s.utterances_per_speaker
    rows_spk = np.repeat(np.arange(K), U)
    labels = pd.DataFrame(
        {
            "FileName": names,
            "Speaker": speakers[rows_spk],
            "Group": np.where(is_test[rows_spk], "Test", "Train"),
            "Language": np.asarray(LANGUAGES)[lang_of[rows_spk]],
            "Modality": np.asarray(MODALITIES)[mod],
            "EmoClass": np.asarray(EMOTIONS)[emo],
            # own stream: adding the column left every other value of the corpus unchanged
            NOISE: np.asarray(NOISE_CLASSES)[
                np.random.default_rng([s.seed, 2]).integers(0, 2, size=K * U)
            ],
        }
    )
    if corr is not None:
        labels["Whisper"] = np.asarray(WHISPER_CLASSES)[corr["whisper"]]
        labels["Gender"] = np.asarray(GENDER_CLASSES)[corr["gender"][rows_spk]]
    return labels


def _truth(
    s: DemoSettings,
    planted: dict[str, np.ndarray],
    constant: np.ndarray,
    corr: dict[str, Any] | None,
) -> dict[str, Any]:
    """The planted truth: BA names per label, and the settings and facts of the corpus."""
    D, K, U = s.n_ba, s.n_speakers, s.utterances_per_speaker
    settings_out = asdict(s)
    if corr is None:
        # the default corpus and its truth file are as before the block existed
        settings_out.pop("correlated")
    settings_out.update(
        {
            "label_level": {
                "Language": "speaker",
                "Modality": "utterance",
                "EmoClass": "utterance",
                NOISE: "utterance",
            },
            "classes": {
                "Language": list(LANGUAGES),
                "Modality": list(MODALITIES),
                "EmoClass": list(EMOTIONS),
                NOISE: list(NOISE_CLASSES),
            },
            "no_signal_labels": [NOISE],
            "no_effect_classes": {"EmoClass": ["X", "U"]},
            "constant": [f"BA{j}" for j in constant],
            "n_utterances": int(K * U),
        }
    )
    truth: dict[str, Any] = {lab: [f"BA{j}" for j in planted[lab]] for lab in LABELS}
    if corr is not None:
        for lab in CORRELATED_LABELS:
            truth[lab] = [f"BA{D + j}" for j in corr["carried"][lab]]
        settings_out["label_level"].update({"Whisper": "utterance", "Gender": "speaker"})
        settings_out["classes"].update(
            {"Whisper": list(WHISPER_CLASSES), "Gender": list(GENDER_CLASSES)}
        )
    truth["settings"] = settings_out
    return truth


def _correlated_plan(s: DemoSettings, n_speakers: int) -> dict[str, Any]:
    """Loadings, thresholds, speaker scores and two labels of the correlated block (own stream).

    Each BA ``j`` of the block is ``1[L_j . f + noise_sd * e > tau_j]`` with ``f`` the
    utterance's latent factors: the speaker's scores (sd ``speaker_sd``) plus the
    utterance's own (sd 1), plus ``within_effect`` on factor 0 in Whisper utterances and
    ``+-speaker_effect / 2`` on factor 1 for M / F speakers. Factors 2.. load on every BA
    (the BAs are correlated); factor 0 loads only on the Whisper carriers and factor 1
    only on the Gender carriers, so those BAs, and only those, carry the labels.
    """
    c = {**CORRELATED_DEFAULTS, **s.correlated}
    C, r, m = int(c["n_ba"]), int(c["rank"]), int(c["carriers"])
    rng = np.random.default_rng([s.seed, 3])
    L = np.zeros((C, r))
    L[:, 2:] = rng.normal(0.0, 1.0, size=(C, r - 2)) / np.sqrt(max(r - 2, 1))
    pool = rng.permutation(C)
    carried = {"Whisper": np.sort(pool[:m]), "Gender": np.sort(pool[m : 2 * m])}
    for f, lab in enumerate(CORRELATED_LABELS):
        L[carried[lab], f] = rng.choice([-1.0, 1.0], size=m) * rng.uniform(0.8, 1.2, size=m)
    sd = np.sqrt(
        (L**2).sum(axis=1) * (1.0 + float(c["speaker_sd"]) ** 2) + float(c["noise_sd"]) ** 2
    )
    rate = rng.uniform(0.15, 0.85, size=C)
    from scipy import stats

    tau = sd * stats.norm.isf(rate)
    scores = rng.normal(0.0, float(c["speaker_sd"]), size=(n_speakers, r))
    gender = rng.permutation(np.arange(n_speakers) % 2)
    scores[:, 1] += (gender - 0.5) * float(c["speaker_effect"])
    U = s.utterances_per_speaker
    p_whisper = rng.beta(2.0, 3.0, size=n_speakers)
    whisper = (rng.random((n_speakers, U)) < p_whisper[:, None]).astype(int).ravel()
    return {
        "L": L,
        "tau": tau,
        "scores": scores,
        "gender": gender,
        "whisper": whisper,
        "carried": carried,
        "within_effect": float(c["within_effect"]),
        "noise_sd": float(c["noise_sd"]),
        "rank": r,
        "n_ba": C,
    }


def _correlated_bits(corr: dict[str, Any], s: DemoSettings, k0: int, k1: int) -> np.ndarray:
    """int8 bits of the correlated block for speakers ``k0 .. k1 - 1`` (speaker-major rows).

    Each speaker's draws come from their own stream, so the bits do not depend on the block size.
    """
    U, r, C = s.utterances_per_speaker, corr["rank"], corr["n_ba"]
    out = np.empty(((k1 - k0) * U, C), dtype=np.int8)
    for k in range(k0, k1):
        rng = np.random.default_rng([s.seed, 3, k])
        f = corr["scores"][k][None, :] + rng.normal(size=(U, r))
        f[:, 0] += corr["within_effect"] * corr["whisper"][k * U : (k + 1) * U]
        value = f @ corr["L"].T + corr["noise_sd"] * rng.normal(size=(U, C))
        out[(k - k0) * U : (k - k0 + 1) * U] = value > corr["tau"][None, :]
    return out


def generate(settings: DemoSettings) -> DemoCorpus:
    """Generate the demo corpus deterministically from ``settings``.

    The BA bits are drawn speaker by speaker, so memory holds the int8 matrix (one byte
    per BA) and one speaker's floats; :func:`write_demo` writes the files without holding
    the matrix at all.

    Parameters
    ----------
    settings : DemoSettings
        Sizes, effect scales and seed.

    Returns
    -------
    DemoCorpus
        Labels table (rows sorted by FileName), BA matrix and planted truth.
    """
    plan = _plan(settings)
    n_corr = 0 if plan.corr is None else plan.corr["n_ba"]
    ba = np.empty((len(plan.labels), settings.n_ba + n_corr), dtype=np.int8)
    for rows, block in plan.blocks(_speakers_per_block(settings)):
        ba[plan.position[rows]] = block
    return DemoCorpus(labels=plan.labels, ba=ba, truth=plan.truth)


def stream(
    settings: DemoSettings,
) -> tuple[pd.DataFrame, dict[str, Any], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """The corpus of ``settings`` without holding its BA matrix (same bits as :func:`generate`).

    Returns
    -------
    (pandas.DataFrame, dict, iterator)
        The labels table (rows sorted by FileName), the planted truth, and per block of about
        20,000 utterances ``(rows, ba)``: row positions in the labels table and their int8 BAs.
    """
    plan = _plan(settings)

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for rows, ba in plan.blocks(_speakers_per_block(settings)):
            yield plan.position[rows], ba

    return plan.labels, plan.truth, blocks()


def _speakers_per_block(settings: DemoSettings, rows: int = 20000) -> int:
    """Speakers per generated block: about ``rows`` utterances (a few hundred MB of floats)."""
    return max(1, rows // settings.utterances_per_speaker)


def load_truth(path: str | Path) -> dict[str, list[str]] | None:
    """Planted BA names per label from a truth file, or None when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(
            f"truth file {path} is not valid JSON ({err.msg}); rerun `dvc repro demo`"
        ) from None
    return {k: [str(b) for b in v] for k, v in data.items() if isinstance(v, list)}


def planted_truth(labels: str | Path, ba_dir: str | Path) -> dict[str, list[str]] | None:
    """The demo's planted BAs per label when the pipeline runs on the demo corpus, else None.

    The truth describes ``data/demo`` only: it applies when the labels CSV (``labels``) and
    the BA folder (``ba_dir``) are the demo's own paths, whatever the tables are named.
    """
    same = [
        Path(str(given)).resolve() == demo_path.resolve()
        for given, demo_path in ((labels, paths.DEMO_LABELS), (ba_dir, paths.DEMO_BA_DIR))
    ]
    return load_truth(paths.DEMO_TRUTH) if all(same) else None


# ---------------------------------------------------------------------------------------
# writing in balr's formats
# ---------------------------------------------------------------------------------------
_TXT_INT = np.array([b"0\n", b"1\n"])
_TXT_FLOAT = np.array([b"%.18e\n" % 0.0, b"%.18e\n" % 1.0])
_TXT_PAIR = np.array([b"0 1\n", b"1 0\n"])


def _encode(vec: np.ndarray, variant: tuple[str, str, str]) -> bytes:
    ext, shape, kind = variant
    if ext == "txt":
        table = {("D", "int"): _TXT_INT, ("D", "float"): _TXT_FLOAT, ("D2", "int"): _TXT_PAIR}[
            (shape, kind)
        ]
        return table[vec].tobytes()
    dtype = np.float64 if kind == "float" else np.int64
    arr = vec.astype(dtype)
    if shape == "D2":
        arr = np.stack([arr, 1 - arr], axis=1).astype(np.float32)
    return pickle.dumps(arr, protocol=pickle.HIGHEST_PROTOCOL)


def write_corpus(
    corpus: DemoCorpus,
    ba_dir: str | Path,
    labels_path: str | Path,
    truth_path: str | Path,
    seed: int,
) -> None:
    """Write the BA files, labels CSV and truth JSON of a corpus held in memory.

    The BA folder is built beside ``ba_dir`` and swapped in at the end, so a failure
    leaves any previous corpus in place. :func:`write_demo` writes the same files
    without holding the corpus.
    """
    labels = corpus.labels
    variant_of = _variants(len(labels), seed)
    names = labels["FileName"].tolist()

    def fill(tmp: Path) -> None:
        made: set[Path] = set()
        for r, name in enumerate(names):
            _write_ba_file(tmp, name, corpus.ba[r], VARIANTS[variant_of[r]], made)

    with transaction():  # BA folder, labels and truth: all together or not at all
        _build_ba_dir(ba_dir, fill)
        _write_labels_truth(labels, corpus.truth, labels_path, truth_path)


def write_demo(
    settings: DemoSettings,
    ba_dir: str | Path,
    labels_path: str | Path,
    truth_path: str | Path,
    progress: bool = True,
) -> pd.DataFrame:
    """Generate the corpus of ``settings`` and write it, streaming: same files as
    ``write_corpus(generate(settings), ...)``, in memory only the labels and one block of speakers.

    Memory is about 0.5 KB per utterance for the labels plus a block of about 20,000
    utterances (a few hundred MB), whatever the corpus size; the BA folder is swapped in
    only when complete.

    Returns
    -------
    pandas.DataFrame
        The labels table written (rows sorted by FileName).
    """
    plan = _plan(settings)
    labels = plan.labels
    variant_of = _variants(len(labels), settings.seed)
    names = labels["FileName"].to_numpy(dtype=object)

    def fill(tmp: Path) -> None:
        made: set[Path] = set()
        bar = None
        if progress and len(labels) >= 20000:
            from tqdm import tqdm

            bar = tqdm(total=len(labels), desc="writing BA files", unit="file", mininterval=1.0)
        for rows, block in plan.blocks(_speakers_per_block(settings)):
            for pos, vec in zip(plan.position[rows], block):
                _write_ba_file(tmp, names[pos], vec, VARIANTS[variant_of[pos]], made)
            if bar is not None:
                bar.update(rows.size)
        if bar is not None:
            bar.close()

    with transaction():  # BA folder, labels and truth: all together or not at all
        _build_ba_dir(ba_dir, fill)
        _write_labels_truth(labels, plan.truth, labels_path, truth_path)
    return labels


def _variants(n_rows: int, seed: int) -> np.ndarray:
    """File variant of each row of the sorted labels."""
    return np.random.default_rng([seed, 1]).integers(0, len(VARIANTS), size=n_rows)


def _write_ba_file(
    root: Path, name: str, vec: np.ndarray, variant: tuple[str, str, str], made: set[Path]
) -> None:
    p = Path(name)
    folder = root / p.parent
    if folder not in made:
        folder.mkdir(parents=True, exist_ok=True)
        made.add(folder)
    (folder / f"{p.stem}_ba.{variant[0]}").write_bytes(_encode(vec, variant))


def _build_ba_dir(ba_dir: str | Path, fill: Callable[[Path], None]) -> None:
    """Run ``fill`` on a fresh folder that replaces ``ba_dir`` when the transaction commits."""
    from smp_balr.core.outputs import atomic_dir

    with atomic_dir(ba_dir) as tmp:
        fill(tmp)


def _write_labels_truth(
    labels: pd.DataFrame, truth: dict[str, Any], labels_path: str | Path, truth_path: str | Path
) -> None:
    from smp_balr.core.outputs import write_csv, write_json

    write_csv(labels, labels_path)
    write_json(truth, truth_path)
