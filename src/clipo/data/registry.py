"""Registry of every dataset the study uses: the authors' released parquet files and the mini splits.

Facts about the released files (path, rows, sha256) come from the authors' repository at a pinned
commit. Benchmarks carry the short name the paper's tables use and the average they count towards:
Track I splits math (M-Avg) from general/QA (G-Avg); Track II splits math (M-Avg) from competition
(C-Avg). The mini track mirrors Track I: four arithmetic splits (M) and one multiple-choice split (G).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from clipo.errors import ConfigError
from clipo.methods import TRACKS

RELEASE_COMMIT = "13c5fd6b44bfb861857f87f41832bf7d3049d9b7"
RELEASE_BASE_URL = f"https://raw.githubusercontent.com/Qwen-Applications/CLIPO/{RELEASE_COMMIT}/"


@dataclass(frozen=True)
class DatasetFile:
    key: str
    """Stable identifier used on the command line and in the workflow."""
    path: str
    """Path under the local data folder; released files live under ``data/`` in the release."""
    track: str
    role: str
    """'train' or 'eval'."""
    rows: int | None = None
    sha256: str | None = None
    benchmark: str | None = None
    """Short column name in the paper's tables (eval files only)."""
    group: str | None = None
    """Which average the benchmark counts towards: 'M', 'G' or 'C'."""
    paper_name: str = ""
    n_samples: int = 1
    """Samples per problem at evaluation (Pass@1 = mean correctness over them)."""
    duplicated: bool = False
    """The released file holds each question twice (thrmQA, tQA)."""
    temperature: float | None = None
    """Set for a sampled view of an evaluation file: ``n_samples`` draws per problem at this temperature,
    reported as its own benchmark and left out of the averages. None: the track's evaluation protocol."""

    @property
    def url(self) -> str:
        if self.track == "mini":
            raise ConfigError(f"{self.key} is generated locally (clipo data synth), not downloaded")
        return RELEASE_BASE_URL + quote("data/" + self.path)


def _rel(key, path, track, role, rows, sha, benchmark=None, group=None, paper_name="", duplicated=False):
    n = 16 if (track == "II" and role == "eval") else 1
    return DatasetFile(key, path, track, role, rows, sha, benchmark, group, paper_name, n, duplicated)


RELEASED: tuple[DatasetFile, ...] = (
    _rel("gsm8k_train", "train/gsm8k.parquet", "I", "train", 7473,
         "9cb7d545e54c40af527cb88f66391e1d26d6a884077e4aee168424d098ff84ac", paper_name="GSM8K (train)"),
    _rel("math_train", "train/math75.parquet", "II", "train", 7500,
         "15099fa7d2d60aa51096ad03bdac46d2e02236d49627a631cc259297f3dd96d2", paper_name="MATH 7.5K (train)"),
    # Track I evaluation (Table 1 column order)
    _rel("gsm8k", "test/gsm8k.parquet", "I", "eval", 1319,
         "bd6f977eecbe4422f1d67159cea796e0c6e5060e5709b99e4afbe622f0498523", "GSM8K", "M", "GSM8K"),
    _rel("gsm_symbolic", "test/gsm_symbolic.parquet", "I", "eval", 5000,
         "59fb519fbfe1d04d4989b0793754b712761c807eab56a9a6c21a31cbb2a3f180", "SYM", "M", "GSM-Symbolic"),
    _rel("gsm_p1", "test/gsm_p1.parquet", "I", "eval", 5000,
         "3b26b2f4d06c7ea1626614670321f1ead903b380107b2081c89b7edc1a188788", "P1", "M", "GSM-P1"),
    _rel("gsm_p2", "test/gsm_p2.parquet", "I", "eval", 2500,
         "2284a83686ac78f006d6839b9f0bcc5a2bf989ac6aa0200a0ab9e5326e441ea7", "P2", "M", "GSM-P2"),
    _rel("commonsense_qa", "test/commonsense_qa.parquet", "I", "eval", 1221,
         "acd6719c36dbc1c531f7c7809e090dce6d969c8b23371bceade41e1ec3aa4533", "cQA", "G", "CommonsenseQA"),
    _rel("truthfulqa", "test/truthfulqa*2.parquet", "I", "eval", 1634,
         "a88f382fa1e537831a040b272ef8f40d96814ceb0abf5c6ff0599628384a5866", "tQA", "G", "TruthfulQA",
         duplicated=True),
    _rel("theoremqa", "test/theoremqa*2.parquet", "I", "eval", 1494,
         "38d3eac6f3571e1695e0e678e63c227d3b7b9a8b803c1e620b1155722bc98d53", "thrmQA", "G", "TheoremQA",
         duplicated=True),
    _rel("mmlu2k", "test/mmlu2k.parquet", "I", "eval", 2000,
         "994660b24751ab432058ee8c9b2ab0ec3a7730a50414da406cc15b6976d40a0b", "MMLU", "G", "MMLU (2k subset)"),
    # Track II evaluation (Table 2 column order)
    _rel("math500", "test/math.parquet", "II", "eval", 500,
         "2f9bd008d0a7ff0b421a03ec8ae5af22172cc488c411198d32808413a7efd5fe", "Math", "M", "MATH500"),
    _rel("math_perturb_simple", "test/math_perturb_simple.parquet", "II", "eval", 279,
         "d9a8a5c7db7bf70939220e394fc75b55b741846b3d5cf38278e60c81138655c4", "Math_S", "M", "MATH-Perturb simple"),
    _rel("math_perturb_hard", "test/math_perturb_hard.parquet", "II", "eval", 279,
         "ad9734d1cc7cc02b3d03df0b40386b611cfc1c20234465884319853e95e6bff2", "Math_H", "M", "MATH-Perturb hard"),
    _rel("amc", "test/amc.parquet", "II", "eval", 83,
         "073577e3c69cea7e05e6ebaba024fd09b3f732ad6dc404426b0ec2db18d4f159", "AMC", "C", "AMC23"),
    _rel("aime", "test/aime.parquet", "II", "eval", 30,
         "dec227a19dd501aae645a765ab360199531d599b9860468e2f7fc5bec1a240ff", "AIME", "C", "AIME 2024"),
    _rel("aime2025", "test/aime2025.parquet", "II", "eval", 30,
         "152c8bf9dd1269eab08e850ef76056aff1b3bdddc509018504c89c8d279c8023", "AIME25", "C", "AIME 2025"),
)

# The mini track's synthetic splits (generated by clipo.data.synthetic; no checksums: deterministic by seed).
MINI: tuple[DatasetFile, ...] = (
    DatasetFile("mini_train", "mini/train.parquet", "mini", "train", paper_name="synthetic arithmetic (train)"),
    DatasetFile("mini_test", "mini/test.parquet", "mini", "eval", benchmark="Test", group="M",
                paper_name="in distribution"),
    # RL at temperature 1 first raises the accuracy of sampled answers; greedy Pass@1 follows later, if at
    # all. Three samples per problem at the rollout temperature measure that directly (1000 problems × 3;
    # a fourth cost ~5 s per evaluation, ~30 s of the default run, for a smaller error than the problems').
    DatasetFile("mini_test_sampled", "mini/test.parquet", "mini", "eval", benchmark="Test-T1",
                paper_name="in distribution, sampled at the rollout temperature", n_samples=3, temperature=1.0),
    DatasetFile("mini_sym", "mini/sym.parquet", "mini", "eval", benchmark="SYM", group="M",
                paper_name="new names and numbers"),
    DatasetFile("mini_p1", "mini/p1.parquet", "mini", "eval", benchmark="P1", group="M",
                paper_name="+1 reasoning step"),
    DatasetFile("mini_p2", "mini/p2.parquet", "mini", "eval", benchmark="P2", group="M",
                paper_name="+2 reasoning steps"),
    DatasetFile("mini_mc", "mini/mc.parquet", "mini", "eval", benchmark="MC", group="G",
                paper_name="multiple choice"),
)

DATASETS: dict[str, DatasetFile] = {d.key: d for d in RELEASED + MINI}

AVERAGE_NAMES: dict[str, dict[str, str]] = {
    "I": {"M": "M-Avg.", "G": "G-Avg."},
    "II": {"M": "M-Avg.", "C": "C-Avg."},
    "mini": {"M": "M-Avg.", "G": "G-Avg."},
}
"""Average columns per track, in the order the paper prints them (followed by 'Avg.' over all)."""


def get_dataset(key: str) -> DatasetFile:
    try:
        return DATASETS[key]
    except KeyError:
        raise ConfigError(f"unknown dataset {key!r}; valid: {', '.join(DATASETS)}") from None


def data_track(track: str) -> str:
    """The track whose files a track evaluates on (``Track.data_track``; the one-GPU track uses Track I's)."""
    return (TRACKS[track].data_track or track) if track in TRACKS else track


def eval_files(track: str) -> list[DatasetFile]:
    """Evaluation files of a track in the paper's column order."""
    files = [d for d in DATASETS.values() if d.track == data_track(track) and d.role == "eval"]
    if not files:
        raise ConfigError(f"unknown track {track!r}; valid: I, II, small, mini")
    return files


def benchmarks(track: str) -> list[str]:
    """Benchmark short names of a track in the paper's column order."""
    return [d.benchmark for d in eval_files(track)]


def eval_paths(track: str) -> list[str]:
    """Distinct evaluation files of a track (a sampled view shares its file with the greedy benchmark)."""
    return list(dict.fromkeys(d.path for d in eval_files(track)))


def benchmark_groups(track: str) -> dict[str, list[str]]:
    """Average name → member benchmarks, plus 'Avg.' over all of them, in the paper's column order.

    Sampled views (``temperature`` set) belong to no average: they measure another protocol.
    """
    groups = {name: [d.benchmark for d in eval_files(track) if d.group == g]
              for g, name in AVERAGE_NAMES[data_track(track)].items()}
    groups["Avg."] = [d.benchmark for d in eval_files(track) if d.temperature is None]
    return groups


def validation_file(track: str) -> DatasetFile:
    """Prompts of the mini trainer's in-training validation: the track's first benchmark (mini: Test)."""
    return by_benchmark(track, TRACKS[track].eval_benchmarks[0])


def by_benchmark(track: str, benchmark: str) -> DatasetFile:
    for d in eval_files(track):
        if d.benchmark == benchmark:
            return d
    raise ConfigError(f"unknown benchmark {benchmark!r} for track {track}; valid: {', '.join(benchmarks(track))}")
