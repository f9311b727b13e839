"""Text summaries in the modality registry: `distill eval | show | export` for synthetic
sentences in word-embedding space (Sucholutsky & Schonlau, IJCNN 2021).

Evaluation is `datadistill.text.evaluate`'s protocol on the real test sentences embedded with the
summary's own frozen table (it travels in the file as ``preprocess.embedding``, DESIGN.md):
a table rebuilt from the corpus could differ (another vocabulary cap, SVD signs on another
machine), and a classifier trained in one embedding space says nothing about another.
`show` decodes a few synthetic sentences to their nearest words (`datadistill.text.decode`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from datadistill.errors import DistillError
from datadistill.modality import (
    EvalRequest,
    Modality,
    ShowRequest,
    describe,
    register,
    tensor_export,
)
from datadistill.modality import shapes as shape_text
from datadistill.text.decode import nearest_tokens
from datadistill.text.summary import TextSummary

SENTENCES_PER_CLASS = 2  # decoded by `distill show` unless --max-per-class says otherwise


def embedded_test_split(summary: TextSummary, request: EvalRequest):
    """The real test sentences of the summary's corpus as a `datadistill.data.Dataset`, embedded
    with the summary's table; words it does not know become UNK, as they would in training."""
    from datadistill.data import Dataset
    from datadistill.text import data as textdata

    text = textdata.load(
        request.dataset or summary.spec.name,
        root=request.data_root,
        seq_len=summary.spec.seq_len,
        dim=summary.spec.dim,
        max_train=int(summary.config.get("max_train", 0)),
    )
    if text.spec.classes != summary.spec.classes:
        raise DistillError(
            f"the summary's classes {list(summary.spec.classes)} are not {text.spec.name}'s "
            f"{list(text.spec.classes)}; pass --dataset {summary.spec.name} (or drop --dataset)"
        )
    index = {w: i for i, w in enumerate(summary.words)}
    unk = index.get(textdata.UNK, index.get(textdata.PAD, 0))
    to_summary_ids = torch.tensor([index.get(w, unk) for w in text.vocab.words])
    x_test = summary.table[to_summary_ids[text.tokens_test]]
    none = torch.zeros(0, dtype=torch.long)  # evaluation reads only the test split
    return Dataset(summary.spec, x_test[:0], none, x_test, text.dataset.y_test)


def evaluate_text_summary(summary: TextSummary, request: EvalRequest) -> list[dict]:
    from datadistill.text import models
    from datadistill.text.evaluate import DEFAULT_EVAL, evaluate_text

    archs = request.archs or DEFAULT_EVAL.archs
    unknown = [a for a in archs if a not in models.ARCHS]
    if unknown:
        raise DistillError(
            f"unknown text model '{unknown[0]}'; choose from: {', '.join(models.ARCHS)}"
        )
    config = dataclasses.replace(
        DEFAULT_EVAL,
        archs=archs,
        runs=request.runs or DEFAULT_EVAL.runs,
        seed=request.seed or DEFAULT_EVAL.seed,
        train=DEFAULT_EVAL.train.with_(epochs=request.epochs or DEFAULT_EVAL.train.epochs),
    )
    data = embedded_test_split(summary, request)
    return evaluate_text(summary, data, config=config, device=request.device)


def show_text(summary: TextSummary, path: Path, request: ShowRequest) -> list[str]:
    """The metadata, the tensors, then up to `max_per_class` decoded sentences per class."""
    del path  # described on the terminal
    per_class = request.max_per_class or SENTENCES_PER_CLASS
    classes = summary.spec.classes
    labels = summary.hard_labels()
    kind = "soft (learnt)" if summary.soft_labels else "hard"
    lines = [
        *describe(summary),
        f"tensors:       {shape_text(_tensors(summary))}",
        f"sentences:     {summary.n} of {summary.spec.seq_len} tokens x {summary.spec.dim}-d "
        f"embeddings, {kind} labels over {len(classes)} classes",
        f"vocabulary:    {len(summary.words)} words (the frozen table, not charged to the "
        "stored bytes)",
        f"decoded (nearest words, at most {per_class} a class):",
    ]
    sentences = summary.sentences()
    for c, name in enumerate(classes):
        for i in torch.nonzero(labels == c).flatten()[:per_class].tolist():
            lines.append(f"  [{name}] {sentences[i] or '(all padding)'}")
    return lines


def _tensors(summary: TextSummary) -> dict[str, torch.Tensor]:
    """The tensors the file stores (`TextSummary.save`)."""
    return {
        "embeddings": summary.embeddings,
        "labels": summary.labels,
        "tokens": nearest_tokens(summary.embeddings, summary.table),
        "preprocess.embedding": summary.table,
    }


register(
    Modality(
        "text",
        load=TextSummary.load,
        evaluate=evaluate_text_summary,
        show=show_text,
        export=tensor_export(_tensors),
        eval_options=frozenset(("archs", "runs", "epochs", "seed", "dataset")),
        show_options=frozenset(("max_per_class",)),
    )
)
