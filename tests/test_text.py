"""Text modality: corpus, vocabulary, frozen table, classifiers, BPTT, decoding, summary."""

import pytest
import torch

from datadistill.distill import run
from datadistill.errors import DistillError, SummaryFormatError
from datadistill.evaluate import EvalConfig
from datadistill.loop import RunOptions
from datadistill.text import data as textdata
from datadistill.text import models
from datadistill.text.decode import decode, nearest_tokens
from datadistill.text.evaluate import evaluate_text
from datadistill.text.summary import TextSummary, random_sentences
from datadistill.train import TrainConfig


@pytest.fixture(scope="module")
def debian():
    return textdata.load("debian")


def test_tokenizer_and_vocabulary():
    words = textdata.tokenize("A C++ IDE for X.509, e-mail!")
    assert words == ["a", "c++", "ide", "for", "x.509", "e-mail"]
    vocab = textdata.Vocabulary([["a", "b", "a"], ["a", "c", "b"]], min_count=2)
    assert vocab.words[:2] == [textdata.PAD, textdata.UNK] and vocab.words[2] == "a"
    assert vocab.encode(["a", "zzz", "b", "a"], 3) == [2, 1, 3]
    assert vocab.encode(["b"], 3) == [3, 0, 0]


def test_debian_corpus_is_balanced_and_embedded(debian):
    spec = debian.spec
    assert spec.classes == ("games", "graphics", "net", "science", "sound", "text")
    assert debian.dataset.class_counts() == [300] * 6
    assert torch.bincount(debian.dataset.y_test).tolist() == [80] * 6
    assert debian.dataset.x_train.shape == (1800, 16, 64)
    assert torch.equal(debian.dataset.x_train, debian.table[debian.tokens_train])
    norms = debian.table.norm(dim=1)
    assert torch.all(norms[:2] == 0) and torch.allclose(norms[2:][norms[2:] > 0], torch.ones(1))


def test_table_puts_related_words_together(debian):
    t, ix = debian.table, debian.vocab.index
    assert t[ix["audio"]] @ t[ix["sound"]] > t[ix["audio"]] @ t[ix["chess"]]
    assert t[ix["game"]] @ t[ix["puzzle"]] > t[ix["game"]] @ t[ix["dna"]]


def test_decoding_real_sentences_gives_their_words_back(debian):
    x, ids = debian.dataset.x_train[:20], debian.tokens_train[:20]
    found = nearest_tokens(x, debian.table)
    known = ids >= 2  # PAD and UNK share the zero vector
    # the nearest row is the word itself, or a word with the same vector (always together)
    torch.testing.assert_close(
        debian.table[found][known], debian.table[ids][known], atol=1e-5, rtol=0
    )
    assert (found[known] == ids[known]).float().mean() > 0.9
    words = decode(x[:1], debian.table, debian.vocab.words)[0].split()
    assert set(words) <= set(debian.vocab.words)


@pytest.mark.parametrize("arch", sorted(models.ARCHS))
def test_classifiers_take_embedded_batches(arch, debian):
    net = models.fresh(arch, debian.spec, torch.Generator().manual_seed(0), "cpu")
    out = net(debian.dataset.x_train[:5])
    assert out.shape == (5, 6) and torch.isfinite(out).all()
    again = models.fresh(arch, debian.spec, torch.Generator().manual_seed(0), "cpu")
    assert torch.equal(again(debian.dataset.x_train[:5]), out)


def test_bptt_lowers_the_meta_loss_and_round_trips(debian, tmp_path):
    losses = []
    s = run(
        "text-bptt",
        debian,
        2,
        options=RunOptions(iterations=12, progress=False),
        overrides={"batch_real": "512"},
        out_dir=tmp_path,
        callbacks=[lambda it, rec: losses.append(rec["loss"])],
    )
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) < sum(losses[:3])
    loaded = TextSummary.load(tmp_path / "summary.safetensors")
    assert loaded.embeddings.shape == (12, 16, 64) and loaded.soft_labels
    torch.testing.assert_close(loaded.embeddings, s.embeddings)
    assert loaded.sentences() == s.sentences() and len(loaded.sentences()) == 12
    meta = loaded.metadata()
    assert meta["modality"] == "text" and meta["seq_len"] == 16 and "syn_lr" in loaded.extra
    assert loaded.stored_bytes == 12 * 16 * 64 * 4 + 12 * 6 * 4  # table not charged
    from datadistill.summary import Summary

    with pytest.raises(SummaryFormatError, match="text summary"):
        Summary.load(tmp_path / "summary.safetensors")


def test_evaluation_rows_follow_the_results_schema(debian):
    from datadistill.results import check_row

    baseline = random_sentences(debian, 2, seed=0)
    assert baseline.n == 12 and baseline.labels.tolist() == sorted(baseline.labels.tolist())
    config = EvalConfig(archs=("embbag",), runs=2, train=TrainConfig(epochs=3))
    rows = evaluate_text(baseline, debian.dataset, config=config)
    assert len(rows) == 1 and check_row(rows[0])
    assert rows[0]["images"] == 12 and rows[0]["metric"] == "accuracy"
    assert 0 <= rows[0]["acc_mean"] <= 1 and len(rows[0]["accs"]) == 2


def test_user_corpora_read_tiny_fake_files(tmp_path):
    ag = tmp_path / "ag_news"
    ag.mkdir()
    for split in ("train", "test"):
        (ag / f"{split}.csv").write_text(
            '"1","Talks resume","Leaders meet again"\n"2","Cup final","Team wins the cup"\n'
            '"3","Shares rise","Markets rally on earnings"\n"4","New chip","Faster processor"\n'
        )
    corpus = textdata.read_ag_news(ag)
    assert (
        corpus.train_labels == [0, 1, 2, 3]
        and corpus.train_text[1] == "Cup final Team wins the cup"
    )
    imdb = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for label, text in (("neg", "dull film<br />bad"), ("pos", "great film")):
            (imdb / split / label).mkdir(parents=True)
            (imdb / split / label / "0_1.txt").write_text(text)
    reviews = textdata.read_imdb(imdb)
    assert reviews.classes == ("neg", "pos") and reviews.train_labels == [0, 1]
    embedded = textdata.embed_corpus(reviews, seq_len=4, dim=2, min_count=1)
    assert embedded.dataset.x_train.shape == (2, 4, 2)
    with pytest.raises(DistillError, match="not found"):
        textdata.load("imdb", root=tmp_path / "missing")
