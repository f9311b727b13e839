"""Labelled text: tokenise, index a vocabulary, embed with a frozen table, hold as tensors.

Text dataset distillation (Sucholutsky & Schonlau, IJCNN 2021) works in the space of word
embeddings: every sentence is padded or cut to `seq_len` tokens and replaced by its
[seq_len, dim] matrix of frozen embeddings, and the synthetic sentences are free matrices of
the same shape. Real sentences are therefore embedded once here, and the distillation
machinery sees a `datadistill.data.Dataset` whose "images" are [seq_len, dim] matrices; the
vocabulary and the table stay beside it for decoding and for the summary file.

Corpora: `debian` (offline, committed: `corpora/README.md`), and `ag-news` / `imdb` read
from files a user downloaded (AG News CSVs as distributed with Zhang et al. 2015's
char-CNN data; IMDB's `aclImdb` folders, Maas et al. 2011).
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from datadistill.data import Dataset
from datadistill.errors import DistillError

PAD, UNK = "<pad>", "<unk>"
CORPORA = Path(__file__).with_name("corpora")
_TOKEN = re.compile(r"[a-z0-9]+(?:[+#]+|(?:['.-][a-z0-9]+)*)")


def tokenize(text: str) -> list[str]:
    """Lower-cased words and numbers; keeps c++, c#, x.509, e-mail as one token each."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class TextSpec:
    """What a text summary must agree on with its data (duck-types `DataSpec` for the
    outer loop: name, num_classes, shape)."""

    name: str
    num_classes: int
    seq_len: int
    dim: int
    classes: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.seq_len, self.dim)


@dataclass
class Corpus:
    """Raw labelled sentences, before any vocabulary or embedding."""

    name: str
    classes: tuple[str, ...]
    train_text: list[str]
    train_labels: list[int]
    test_text: list[str]
    test_labels: list[int]


class Vocabulary:
    """Words of the training split seen at least `min_count` times, most frequent first,
    after PAD (index 0, the zero embedding) and UNK (1); at most `max_size` words."""

    def __init__(self, sentences: list[list[str]], *, min_count: int = 2, max_size: int = 20000):
        counts = Counter(w for s in sentences for w in s)
        words = [w for w, c in counts.most_common(max_size) if c >= min_count]
        self.words = [PAD, UNK, *words]
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: list[str], seq_len: int) -> list[int]:
        ids = [self.index.get(w, 1) for w in tokens[:seq_len]]
        return ids + [0] * (seq_len - len(ids))


@dataclass
class TextData:
    """An embedded corpus: `dataset` for the distillation machinery, the rest for people."""

    modality = "text"  # which methods take it (`datadistill.distill.run` checks)

    dataset: Dataset
    vocab: Vocabulary
    table: torch.Tensor  # [V, dim], frozen
    tokens_train: torch.Tensor  # [N, seq_len] int64
    tokens_test: torch.Tensor

    @property
    def spec(self) -> TextSpec:
        return self.dataset.spec


def embed_corpus(
    corpus: Corpus, *, seq_len: int, dim: int, min_count: int = 2, max_train: int = 0
) -> TextData:
    """Tokenise, build the vocabulary and the frozen table on the training split only."""
    from datadistill.text.embeddings import ppmi_svd

    train_tok = [tokenize(t) for t in corpus.train_text]
    test_tok = [tokenize(t) for t in corpus.test_text]
    y_train = torch.tensor(corpus.train_labels)
    if max_train and max_train < len(train_tok):
        keep = torch.randperm(len(train_tok), generator=torch.Generator().manual_seed(0))
        keep = keep[:max_train].sort().values
        train_tok = [train_tok[i] for i in keep]
        y_train = y_train[keep]
    vocab = Vocabulary(train_tok, min_count=min_count)
    tokens_train = torch.tensor([vocab.encode(s, seq_len) for s in train_tok])
    tokens_test = torch.tensor([vocab.encode(s, seq_len) for s in test_tok])
    table = ppmi_svd(tokens_train, len(vocab), dim=dim)
    spec = TextSpec(corpus.name, len(corpus.classes), seq_len, dim, tuple(corpus.classes))
    dataset = Dataset(
        spec, table[tokens_train], y_train, table[tokens_test], torch.tensor(corpus.test_labels)
    )
    return TextData(dataset, vocab, table, tokens_train, tokens_test)


# --- corpora ---------------------------------------------------------------------------------


def read_debian(path: Path = CORPORA / "debian_descriptions.tsv") -> Corpus:
    """The committed Debian package-description corpus (6 sections; `corpora/README.md`)."""
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    classes = tuple(sorted({r["label"] for r in rows}))
    return _corpus("debian", classes, [(r["split"], r["label"], r["description"]) for r in rows])


def read_ag_news(folder: Path) -> Corpus:
    """AG News `train.csv` / `test.csv`: class index 1-4, title, description (no header)."""
    classes = ("world", "sports", "business", "sci/tech")
    rows = []
    for split in ("train", "test"):
        path = folder / f"{split}.csv"
        if not path.exists():
            raise DistillError(f"{path} not found; put AG News train.csv and test.csv in {folder}")
        with open(path, encoding="utf-8") as f:
            for r in csv.reader(f):
                if len(r) >= 3 and r[0].strip().isdigit():
                    rows.append(
                        (split, classes[int(r[0]) - 1], f"{r[1]} {r[2]}".replace("\\", " "))
                    )
    return _corpus("ag-news", classes, rows)


def read_imdb(folder: Path) -> Corpus:
    """IMDB reviews `aclImdb/{train,test}/{neg,pos}/*.txt` (Maas et al., 2011)."""
    classes = ("neg", "pos")
    rows = []
    for split in ("train", "test"):
        for label in classes:
            sub = folder / split / label
            if not sub.is_dir():
                raise DistillError(
                    f"{sub} not found; unpack aclImdb_v1.tar.gz so {folder} holds it"
                )
            for path in sorted(sub.glob("*.txt")):
                rows.append((split, label, path.read_text(encoding="utf-8").replace("<br />", " ")))
    return _corpus("imdb", classes, rows)


def _corpus(name: str, classes: tuple[str, ...], rows: list[tuple[str, str, str]]) -> Corpus:
    index = {c: i for i, c in enumerate(classes)}
    parts = {"train": ([], []), "test": ([], [])}
    for split, label, text in rows:
        parts[split][0].append(text)
        parts[split][1].append(index[label])
    if not parts["train"][0] or not parts["test"][0]:
        raise DistillError(f"corpus '{name}' has an empty train or test split")
    return Corpus(name, classes, *parts["train"], *parts["test"])


# sequence length and table width per corpus (ours: Debian descriptions are <= 16 tokens for
# 97% of lines; the reference's IMDB runs use 100-d GloVe)
DEFAULTS = {"debian": (16, 64), "ag-news": (48, 100), "imdb": (200, 100)}


def available() -> list[str]:
    return list(DEFAULTS)


def load(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    seq_len: int = 0,
    dim: int = 0,
    max_train: int = 0,
) -> TextData:
    """Corpus `name`, embedded; seq_len/dim 0 take `DEFAULTS`. AG News and IMDB are read
    from ROOT/ag_news and ROOT/aclImdb (ROOT: --data-root, $DATADISTILL_DATA or ./data)."""
    if name not in DEFAULTS:
        raise DistillError(
            f"unknown text dataset '{name}'; choose one of: {', '.join(available())}"
        )
    root = Path(root or os.environ.get("DATADISTILL_DATA", "data"))
    reader = {
        "debian": lambda: read_debian(),
        "ag-news": lambda: read_ag_news(root / "ag_news"),
        "imdb": lambda: read_imdb(root / "aclImdb"),
    }[name]
    default_len, default_dim = DEFAULTS[name]
    return embed_corpus(
        reader(), seq_len=seq_len or default_len, dim=dim or default_dim, max_train=max_train
    )
