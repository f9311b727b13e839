"""Implicit-feedback data: a binary user-item matrix, split per user into train/val/test items.

The split follows the infinity-AE / Distill-CF code (Sachdeva et al., NeurIPS 2022,
`preprocess.py`): every rating counts as an interaction, users with fewer than 3 are
dropped, and each user's items are shuffled and cut 80 / 10 / 10 into train, validation
and test, with at least one test item. Models see the train items of every user (the
"context") and are scored on the held-out items of the same users.

Offline, `powerlaw` generates a seeded matrix with the two power laws of real feedback
(item popularity, user activity) and topic structure to learn from (`PowerLawConfig`).
MovieLens-1M / 100k and Amazon ratings files are read from a folder the user downloaded.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from datadistill.errors import DistillError


@dataclass(frozen=True)
class RecSpec:
    """What a recommender summary must agree on with its data."""

    name: str
    num_users: int
    num_items: int

    @property
    def num_classes(self) -> int:  # the outer loop's `ipc` counts users of one "class"
        return 1


@dataclass
class RecData:
    """Dense float interactions [U, I] in {0, 1} and boolean held-out masks.

    `train` is what distillation and the models see; `val` picks hyperparameters (the
    ridge), `test` is reported. Dense is fine for MovieLens-sized data (6,040 x 3,706).
    """

    modality = "recsys"  # which methods take it (`datadistill.distill.run` checks)

    spec: RecSpec
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor

    def class_counts(self) -> list[int]:
        """Users available to a summary of `ipc` users (the outer loop checks ipc <= this)."""
        return [self.spec.num_users]

    def to(self, device) -> RecData:
        return RecData(self.spec, self.train.to(device), self.val.to(device), self.test.to(device))

    @property
    def interactions_per_user(self) -> float:
        """Mean train interactions per user: Distill-CF's cardinality term divides by it."""
        return float(self.train.sum() / self.spec.num_users)


def split(name: str, user_items: list[list[int]], num_items: int, *, seed: int = 0) -> RecData:
    """Per-user 80/10/10 split of item lists (users with < 3 items are dropped)."""
    gen = torch.Generator().manual_seed(seed)
    users = [sorted(set(items)) for items in user_items if len(set(items)) >= 3]
    if not users:
        raise DistillError(f"dataset '{name}' has no user with 3 or more interactions")
    parts = [torch.zeros(len(users), num_items) for _ in range(3)]
    for u, items in enumerate(users):
        items = torch.tensor(items)[torch.randperm(len(items), generator=gen)]
        n = len(items)
        cut_train, cut_val = int(0.8 * n), int(0.9 * n)
        cut_train = min(cut_train, n - 1)  # at least one test item
        cut_val = max(min(cut_val, n - 1), cut_train)
        parts[0][u, items[:cut_train]] = 1.0
        parts[1][u, items[cut_train:cut_val]] = 1.0
        parts[2][u, items[cut_val:]] = 1.0
    spec = RecSpec(name, len(users), num_items)
    return RecData(spec, parts[0], parts[1].bool(), parts[2].bool())


# --- the offline generator ----------------------------------------------------------------


@dataclass(frozen=True)
class PowerLawConfig:
    """A seeded implicit-feedback generator with real feedback's heavy tails.

    Item popularity is Zipfian: the item of popularity rank r has weight r^-item_exponent.
    User activity is a discrete power law: a user has min_items * V^(-1/(activity_exponent-1))
    items (V uniform in (0, 1]), capped at max_items, so P(n) ~ n^-activity_exponent.
    Items belong to one of `topics` topics (at random); each user's taste is a
    Dirichlet(taste_concentration) mixture of topics, and a user's items are drawn without
    replacement with probability sum_t taste_t * weight_i 1[topic(i) = t] / W_t. A small
    concentration gives users one or two favourite topics: the structure CF models learn.
    """

    users: int = 2000
    items: int = 500
    topics: int = 10
    item_exponent: float = 1.0
    activity_exponent: float = 2.2
    min_items: int = 8
    max_items: int = 120
    taste_concentration: float = 0.1
    seed: int = 0


def powerlaw(config: PowerLawConfig = PowerLawConfig()) -> list[list[int]]:
    """Item lists per user drawn from `config` (deterministic for its seed)."""
    c = config
    if c.max_items > c.items or c.min_items < 3 or c.activity_exponent <= 1:
        raise DistillError(
            "need 3 <= min_items, max_items <= items and activity_exponent > 1, got "
            f"{c.min_items}, {c.max_items}, {c.items}, {c.activity_exponent}"
        )
    gen = torch.Generator().manual_seed(c.seed)
    ranks = torch.randperm(c.items, generator=gen).double() + 1
    weight = ranks.pow(-c.item_exponent)
    topic = torch.randint(c.topics, (c.items,), generator=gen)
    onehot = torch.nn.functional.one_hot(topic, c.topics).double()  # [I, T]
    within = weight[:, None] * onehot / (onehot * weight[:, None]).sum(0).clamp_min(1e-12)
    taste = torch.distributions.Dirichlet(torch.full((c.topics,), c.taste_concentration))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
        tastes = taste.sample((c.users,)).double()  # [U, T]
    v = 1 - torch.rand(c.users, generator=gen, dtype=torch.float64)
    counts = (c.min_items * v.pow(-1 / (c.activity_exponent - 1))).floor().clamp(max=c.max_items)
    probs = (tastes @ within.T).clamp_min(1e-12)  # [U, I]
    out = []
    for u in range(c.users):
        n = int(counts[u])
        out.append(torch.multinomial(probs[u], n, replacement=False, generator=gen).tolist())
    return out


# --- files a user downloaded ---------------------------------------------------------------


def read_movielens(path: Path) -> list[tuple[str, str]]:
    """(user, item) pairs of MovieLens-1M `ratings.dat` (`::`) or 100k `u.data` (tabs)."""
    pairs = []
    with open(path, encoding="latin-1") as f:
        for line in f:
            parts = line.strip().split("::") if "::" in line else line.split()
            if len(parts) >= 2:
                pairs.append((parts[0], parts[1]))
    return pairs


def read_amazon(path: Path) -> list[tuple[str, str]]:
    """(user, item) pairs of an Amazon reviews file (McAuley et al.): a ratings-only CSV
    (`item,user,rating,time` in the 2018 release; `user,item,...` with a header naming
    them otherwise) or JSON lines with `reviewerID`/`user_id` and `asin`/`parent_asin`,
    optionally gzipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    pairs = []
    with opener(path, "rt", encoding="utf-8") as f:
        first = f.readline()
        f.seek(0)
        if first.lstrip().startswith("{"):
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    user = r.get("reviewerID", r.get("user_id"))
                    item = r.get("asin", r.get("parent_asin"))
                    if user is None or item is None:
                        raise DistillError(f"{path}: a JSON line lacks reviewerID/asin")
                    pairs.append((user, item))
            return pairs
        rows = csv.reader(f)
        head = [h.strip().lower() for h in next(rows)]
        if "user_id" in head or "user" in head:
            iu = head.index("user_id" if "user_id" in head else "user")
            ii = next(
                head.index(k) for k in ("parent_asin", "asin", "item_id", "item") if k in head
            )
        else:  # headerless 2018 ratings CSV: item, user, rating, timestamp
            pairs.append((head[1], head[0]))
            iu, ii = 1, 0
        pairs.extend((r[iu], r[ii]) for r in rows if len(r) > max(iu, ii))
    return pairs


def _index(name: str, pairs: list[tuple[str, str]], *, seed: int) -> RecData:
    if not pairs:
        raise DistillError(f"dataset '{name}': the file holds no (user, item) pairs")
    users: dict[str, list[int]] = {}
    items: dict[str, int] = {}
    for u, i in pairs:
        users.setdefault(u, []).append(items.setdefault(i, len(items)))
    return split(name, list(users.values()), len(items), seed=seed)


_FILES = {
    "ml-1m": ("ml-1m/ratings.dat", read_movielens),
    "ml-100k": ("ml-100k/u.data", read_movielens),
}


def available() -> list[str]:
    return ["powerlaw", *_FILES, "amazon:FILE"]


def load(name: str, *, root: str | os.PathLike | None = None, seed: int = 0) -> RecData:
    """`powerlaw` (generated), `ml-1m`, `ml-100k` (ROOT/ml-1m/ratings.dat ...) or
    `amazon:FILE` (a ratings CSV or reviews JSON file under ROOT or an absolute path)."""
    root = Path(root or os.environ.get("DATADISTILL_DATA", "data"))
    if name == "powerlaw":
        return split(name, powerlaw(PowerLawConfig(seed=seed)), PowerLawConfig().items, seed=seed)
    if name in _FILES:
        rel, reader = _FILES[name]
        path = root / rel
        if not path.exists():
            raise DistillError(
                f"{path} not found; download {name} from grouplens.org/datasets/movielens and "
                f"unpack it under {root} (or pass --data-root)"
            )
        return _index(name, reader(path), seed=seed)
    if name.startswith("amazon:"):
        path = Path(name.split(":", 1)[1])
        path = path if path.is_absolute() else root / path
        if not path.exists():
            raise DistillError(
                f"{path} not found; download an Amazon reviews ratings file (e.g. "
                "Magazine_Subscriptions.csv) and pass --dataset amazon:PATH"
            )
        return _index(f"amazon-{path.name.split('.')[0].lower()}", read_amazon(path), seed=seed)
    raise DistillError(
        f"unknown recommender dataset '{name}'; choose one of: {', '.join(available())}"
    )


def random_users(data: RecData, users: int, *, seed: int) -> torch.Tensor:
    """The baseline a summary is compared with: train rows of `users` real users drawn
    uniformly (seeded)."""
    rows = torch.randperm(data.spec.num_users, generator=torch.Generator().manual_seed(seed))
    return data.train[rows[:users]]
