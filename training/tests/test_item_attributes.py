"""Item attributes as training-time side information: the weighting, and folding them away for export."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "training"))

from taste_training import data as dt  # noqa: E402
from taste_training.export import random_batch  # noqa: E402
from taste_training.model import ModelConfig, TasteEncoder  # noqa: E402


def _seq(item_attributes):
    uris = ["<pad>", "<unk>"] + [f"x:{i}" for i in range(6)]
    return dt.Sequences("toy", uris, [], [], [], [], [], item_attributes=item_attributes)


def test_attribute_matrix_weights_are_counts_over_the_items_total():
    seq = _seq({2: np.array([5, 5, 7]), 3: np.array([1]), 1: np.array([4]), 99: np.array([4]), 4: np.array([], np.int64)})
    rows, cols, weights, num_attributes = dt.attribute_matrix(seq)
    got = {(int(r), int(c)): float(w) for r, c, w in zip(rows, cols, weights)}
    # <unk> (1), an id outside the vocabulary (99) and an item without attributes (4) get empty rows
    assert got == pytest.approx({(2, 5): 2 / 3, (2, 7): 1 / 3, (3, 1): 1.0})
    assert num_attributes == 8


def test_attribute_matrix_refuses_a_dataset_without_attributes():
    with pytest.raises(ValueError, match="no item attributes"):
        dt.attribute_matrix(_seq(None))


TOY_CONFIG = ModelConfig(num_items=40, dim=16, layers=1, heads=2, max_seq_len=8, query_tokens=2, query_buckets=32)


def _model_with_attributes(seed: int = 0) -> tuple[TasteEncoder, ModelConfig]:
    torch.manual_seed(seed)
    cfg = TOY_CONFIG
    rows = np.array([2, 2, 3, 39]); cols = np.array([1, 4, 4, 2]); weights = np.array([0.5, 0.5, 1.0, 1.0], np.float32)
    attributes = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(weights), (40, 5), check_invariants=True)
    model = TasteEncoder(cfg, attributes)
    with torch.no_grad():  # make the attribute term large enough to matter
        model.attr_emb.weight.normal_(std=1.0)
    return model.eval(), cfg


def test_an_items_vector_is_its_embedding_plus_its_weighted_attributes():
    model, _ = _model_with_attributes()
    w = model.item_weights().detach()
    a = model.attr_emb.weight.detach()
    e = model.item_emb.weight.detach()
    assert torch.allclose(w[2], e[2] + 0.5 * a[1] + 0.5 * a[4], atol=1e-6)
    assert torch.allclose(w[5], e[5])  # no attributes


def test_folding_keeps_every_output_and_leaves_a_plain_model():
    model, cfg = _model_with_attributes()
    feeds = {k: torch.from_numpy(v) for k, v in random_batch(np.random.default_rng(3), 6, cfg.max_seq_len, cfg.num_items,
                                                              cfg.query_tokens, cfg.query_buckets).items()}
    with torch.no_grad():
        before = model(**feeds)
        table = model.item_table()
    model.fold_item_attributes()
    with torch.no_grad():
        after = model(**feeds)
    assert model.attr_emb is None and model.item_attributes is None
    assert "attr_emb.weight" not in model.state_dict()
    assert torch.allclose(before, after, atol=1e-6)
    assert torch.allclose(table, model.item_table(), atol=1e-6)
    # the folded state loads into a model built without attributes: export needs nothing else
    TasteEncoder(cfg).load_state_dict(model.state_dict())


def test_the_attribute_embeddings_are_trained():
    model, cfg = _model_with_attributes()
    model.train()
    feeds = {k: torch.from_numpy(v) for k, v in random_batch(np.random.default_rng(4), 4, cfg.max_seq_len, cfg.num_items,
                                                              cfg.query_tokens, cfg.query_buckets).items()}
    h = model.hidden(**feeds)
    model.logits(h[:, -1]).logsumexp(-1).sum().backward()
    assert model.attr_emb.weight.grad is not None and model.attr_emb.weight.grad.abs().sum() > 0


def test_a_simulator_catalogue_gives_each_item_its_genre_and_artist(tmp_path):
    cat = tmp_path / "catalogue.tsv"
    cat.write_text("taste:track:1\tITEM_KIND_TRACK\tjazz\tMiles\tSo What\t500000\n"
                   "taste:track:2\tITEM_KIND_TRACK\tjazz\tColtrane\tNaima\t260000\n"
                   "taste:track:3\tITEM_KIND_TRACK\trock\tMiles\tOdd\t1000\n", encoding="utf-8")
    from taste_training import features as fx
    from taste_training.export import read_vocab_file

    vocab = fx.Vocab(read_vocab_file(cat))
    attrs = dt.sim_item_attributes(cat, vocab)
    one, two, three = (attrs[vocab.id(f"taste:track:{i}")].tolist() for i in (1, 2, 3))
    assert one[0] == two[0] != three[0]  # same genre, same attribute
    assert one[1] == three[1] != two[1]  # one artist across genres is one attribute
    assert len({*one, *two, *three}) == 4


def test_movielens_genres_become_attributes_and_a_movie_without_genres_has_none(tmp_path):
    d = tmp_path / "ml-latest-small"
    d.mkdir()
    (d / "movies.csv").write_text("movieId,title,genres\n10,A (1990),Drama|Comedy\n20,B (1991),Comedy\n"
                                  "30,C (1992),(no genres listed)\n", encoding="utf-8")
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{m},4.0,{100 * u + m}\n" for u in (1, 2) for m in (10, 20, 30)), encoding="utf-8")
    seq = dt.load_ml_latest_small(tmp_path, core=1)
    item = {uri: k for k, uri in enumerate(seq.uris)}
    comedy, drama = 1, 2  # ids 1..G in the genres' sorted order; 0 stays unused
    assert sorted(seq.item_attributes[item["ml:movie:10"]].tolist()) == [comedy, drama]
    assert seq.item_attributes[item["ml:movie:20"]].tolist() == [comedy]
    assert item["ml:movie:30"] not in seq.item_attributes


def _objective(attribute_loss: float, with_attributes: bool = True):
    from taste_training.train import NextItemLoss

    model = _model_with_attributes()[0] if with_attributes else TasteEncoder(TOY_CONFIG)
    return NextItemLoss(model, 0.0, attribute_loss), model


def _batch(seed: int = 5):
    cfg = TOY_CONFIG
    feeds = random_batch(np.random.default_rng(seed), 4, cfg.max_seq_len, cfg.num_items, cfg.query_tokens, cfg.query_buckets)
    x = [torch.from_numpy(feeds[k]) for k in ("item_ids", "event_kinds", "query_tokens", "gap_buckets", "age_buckets")]
    tgt = torch.full((4, cfg.max_seq_len), 0, dtype=torch.int64)
    tgt[:, -1] = torch.tensor([2, 3, 5, 39])  # items with attributes {1: .5, 4: .5}, {4: 1}, none, {2: 1}
    return tgt, x


def test_without_the_side_task_the_objective_is_the_next_item_cross_entropy():
    objective, model = _objective(0.0)
    tgt, x = _batch()
    loss, mask = objective(tgt, *x)
    expected = F.cross_entropy(model.logits(model.hidden(*x)[mask]), tgt[mask])
    assert torch.allclose(loss, expected)


def test_the_side_task_adds_the_next_items_attribute_cross_entropy_for_targets_that_have_attributes():
    objective, model = _objective(0.5)
    tgt, x = _batch()
    loss, mask = objective(tgt, *x)
    h = model.hidden(*x)[mask]
    item_loss = F.cross_entropy(model.logits(h), tgt[mask])
    # by hand: each target with attributes scores every attribute by scale * h . a, and its loss is the
    # cross-entropy against the target's attribute weights; item 5 has none and is left out
    scale = torch.exp(model.log_scale).item()
    a = model.attr_emb.weight
    wants = {2: {1: 0.5, 4: 0.5}, 3: {4: 1.0}, 39: {2: 1.0}}
    terms = []
    for row, item in enumerate(tgt[mask].tolist()):
        if item not in wants:
            continue
        log_p = torch.log_softmax(scale * (a @ h[row]), dim=0)
        terms.append(-sum(w * log_p[k] for k, w in wants[item].items()))
    assert len(terms) == 3
    assert torch.allclose(loss, item_loss + 0.5 * torch.stack(terms).mean(), atol=1e-5)
    loss.backward()
    assert model.attr_emb.weight.grad.abs().sum() > 0


def test_the_side_task_needs_item_attributes():
    with pytest.raises(ValueError, match="--attribute-loss needs --item-attributes"):
        _objective(0.5, with_attributes=False)
