"""Text BPTT vs a random subset of as many real sentences per class (issue 12).

    python experiments/text_distill.py --ipc 10 --iterations 300

On the offline Debian package-description corpus (`core/text/corpora`, 6 sections), the
summary is distilled through the one outer loop with DD's objective and a TextCNN learner,
then it and a seeded random real subset of the same size are evaluated by the same
protocol (`datadistill.text.evaluate`: fresh TextCNN and embedding-bag classifiers, 300 epochs of
the one training loop, 3 runs, accuracy on the 480 test descriptions). Rows go to
experiments/results/text.json in `datadistill.results`' schema: ipc -> sentences per class,
images -> sentences, acc_mean/acc_std -> test accuracy over the runs (`metric`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from datadistill.distill import run
from datadistill.evaluate import EvalConfig
from datadistill.loop import RunOptions
from datadistill.results import append_rows, table
from datadistill.text import data as textdata
from datadistill.text.evaluate import evaluate_text
from datadistill.text.summary import random_sentences
from datadistill.train import TrainConfig

RESULTS = Path("experiments/results")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ipc", type=int, nargs="+", default=[10])
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    os.environ.setdefault("DATADISTILL_COMPILE", "0")  # tiny models: compiling costs more
    text = textdata.load("debian")
    config = EvalConfig(
        archs=("textcnn", "embbag"), runs=args.runs, train=TrainConfig(epochs=args.epochs)
    )
    out = RESULTS / "text.json"
    for ipc in args.ipc:
        s = run("text-bptt", text, ipc, options=RunOptions(seed=args.seed,
                iterations=args.iterations, progress=False),
                out_dir=RESULTS / "text" / f"text-bptt-debian-ipc{ipc}-s{args.seed}")  # fmt: skip
        labels = s.hard_labels().tolist()
        for i, sentence in enumerate(s.sentences()[::ipc]):
            print(f"  [{text.spec.classes[labels[i * ipc]]}] {sentence}")
        rows = evaluate_text(s, text.dataset, config=config)
        rows += evaluate_text(random_sentences(text, ipc, seed=args.seed), text.dataset,
                              config=config)  # fmt: skip
        append_rows(out, rows)
        print(table(rows), flush=True)


if __name__ == "__main__":
    main()
