"""Text-query encoders (lm, sentence, lookup) on tiny random configs."""

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from model import LexVLA, load_encoder
from model.config import load_named_config
from model.query_encoders import own_words, padded_word_ids
from model.sentence import runs_in_bfloat16
from model.training.starting_model import build_model, init_lookup_weights

ALL = '{"query_encoders": ["lm", "sentence", "lookup", "hybrid"], "query_encoder": "lookup"}'
QUERIES = ["a black dog runs on the beach", "Two DOGS, one dog!", "zzz qqq"]


@pytest.fixture(scope="module")
def model() -> LexVLA:
    torch.manual_seed(0)
    return build_model("tiny-lite0", ALL)[0]


def test_own_words_are_the_vocabulary_words_of_the_text_once_each(model: LexVLA) -> None:
    index = model.vocab.index
    assert [model.vocab.words[i] for i in own_words(QUERIES[1], index)] == ["two", "dogs", "dog"]
    assert own_words("the a of", index) == []  # stop words are not in the vocabulary
    ids = padded_word_ids(QUERIES, index)
    assert ids.shape == (3, 4) and ids[2].tolist() == [-1] * 4  # black dog runs beach


def test_lookup_queries_hold_exactly_their_own_words(model: LexVLA) -> None:
    weights = model.encode_queries(QUERIES).word_weights
    for text, row in zip(QUERIES, weights):
        assert set(row.nonzero().flatten().tolist()) == set(own_words(text, model.vocab.index))
    assert torch.allclose(weights[:2].norm(dim=1), torch.ones(2))
    assert weights[2].abs().sum() == 0  # nothing searchable: an empty vector


def test_lookup_weights_start_at_each_words_idf(model: LexVLA) -> None:
    index = model.vocab.index
    words = padded_word_ids(["a dog", "a dog on the beach", "a dog and a cat"], index)
    init_lookup_weights(model, words, {"lookup"})
    vector = model.encode_queries(["dog cat beach"]).word_weights[0]
    dog, cat, beach = (float(vector[index[w]]) for w in ("dog", "cat", "beach"))
    assert dog < cat == pytest.approx(beach)  # the word in every caption counts least
    init_lookup_weights(model, words, {"lookup"}, scale=0.5)
    lookup = model.queries["lookup"]
    raw = torch.nn.functional.softplus(lookup.weight.detach())
    assert float(raw[index["cat"]]) == pytest.approx(0.5 * math.log(3 / 1), rel=1e-4)


def test_every_encoder_gives_non_negative_vectors_and_lm_is_the_caption_encoder(
    model: LexVLA,
) -> None:
    for name in ("lm", "sentence", "lookup", "hybrid"):
        weights = model.encode_queries(QUERIES[:2], encoder=name).word_weights
        assert weights.shape == (2, len(model.vocab)) and (weights >= 0).all()
    lm = model.encode_queries(QUERIES[:2], encoder="lm").word_weights
    assert torch.equal(lm, model.encode_texts(QUERIES[:2]).word_weights)
    with pytest.raises(ValueError, match="no 'sentence' query encoder"):
        load_encoder("tiny-lite0").encode_queries(["a dog"], encoder="sentence")


def test_query_encoders_round_trip_and_change_the_fingerprint(
    model: LexVLA, tmp_path: Path
) -> None:
    with torch.no_grad():
        for parameter in model.queries.parameters():
            parameter.normal_()
    model.save_pretrained(tmp_path / "ckpt")
    loaded = load_encoder(tmp_path / "ckpt")
    assert loaded.config.query_encoder == "lookup"
    for name in ("sentence", "lookup", "hybrid"):
        expected = model.encode_queries(QUERIES, encoder=name).word_weights
        got = loaded.encode_queries(QUERIES, encoder=name).word_weights
        assert torch.allclose(expected, got, atol=2e-3), name  # float16 storage
    lm_queries, _ = build_model(
        "tiny-lite0", ALL.replace('"query_encoder": "lookup"', '"query_encoder": "lm"')
    )
    lm_queries.load_state_dict(model.state_dict())
    assert lm_queries.fingerprint() != model.fingerprint()


def test_hybrid_queries_keep_every_own_word_and_add_the_expansion(model: LexVLA) -> None:
    hybrid = model.encode_queries(QUERIES[:2], encoder="hybrid").word_weights
    for text, row in zip(QUERIES, hybrid):
        own = own_words(text, model.vocab.index)
        assert (row[own] > 0).all()
        assert int((row > 0).sum()) > len(own)  # the sentence's words too


def test_a_query_encoder_the_model_lacks_is_refused(tmp_path: Path) -> None:
    config = load_named_config("tiny-lite0")
    with pytest.raises(ValueError, match="not one of query_encoders"):
        config.merged({"query_encoder": "lookup"})
    with pytest.raises(ValueError, match="unknown query encoder"):
        LexVLA.from_config(config.merged({"query_encoders": ["lm", "magic"]}))
    load_encoder("tiny-lite0").save_pretrained(tmp_path / "ckpt")
    with pytest.raises(ValueError, match="may only change"):
        build_model(str(tmp_path / "ckpt"), '{"pooling": "max"}')
    resparsed, untrained = build_model(str(tmp_path / "ckpt"), '{"sparse": {"doc_top_k": 3}}')
    assert resparsed.config.sparse.doc_top_k == 3 and not untrained
    grown, untrained = build_model(str(tmp_path / "ckpt"), '{"query_encoders": ["lm", "lookup"]}')
    assert untrained == {"lookup"}
    original = load_encoder(tmp_path / "ckpt")
    for key, value in original.trainable_state().items():  # the trained weights are kept
        assert torch.equal(grown.trainable_state()[key], value), key


def test_text_queries_keep_their_own_top_k_and_image_queries_the_index_one() -> None:
    short, _ = build_model(
        "tiny-lite0",
        '{"query_encoders": ["lm", "hybrid"], "query_encoder": "hybrid",'
        ' "sparse": {"query_top_k": 8, "text_query_top_k": 2}}',
    )
    weights = short.encode_queries(QUERIES[:2], encoder="lm").word_weights
    assert ((weights > 0).sum(dim=1) == 2).all()
    assert torch.allclose(weights.norm(dim=1), torch.ones(2))  # still a cosine
    hybrid = short.encode_queries(QUERIES[:2], encoder="hybrid").word_weights
    for text, row in zip(QUERIES, hybrid):  # the top 2 and every word the user typed
        own = own_words(text, short.vocab.index)
        assert (row[own] > 0).all() and len(own) > 2
        assert len(own) <= int((row > 0).sum()) <= 2 + len(own)
        assert torch.allclose(row.norm(), torch.tensor(1.0))
    images = short.encode_images([Image.new("RGB", (64, 64), (200, 40, 40))]).word_weights
    assert int((short.index_vectors(images, "query") > 0).sum()) == 8
    with pytest.raises(ValueError, match="text_query_top_k"):
        build_model("tiny-lite0", '{"sparse": {"text_query_top_k": -1}}')


def test_the_index_cut_of_a_text_query_keeps_every_own_word_first() -> None:
    tight, _ = build_model(
        "tiny-lite0",
        '{"query_encoders": ["lm", "hybrid"], "query_encoder": "hybrid",'
        ' "sparse": {"query_top_k": 3, "text_query_top_k": 2}}',
    )
    text = QUERIES[0]
    own = own_words(text, tight.vocab.index)
    assert len(own) >= 3  # more own words than query_top_k - text_query_top_k
    hybrid = tight.queries["hybrid"]
    with torch.no_grad():  # three other words outweigh every own word
        hybrid.lookup.weight.fill_(-1.0)
        others = [i for i in range(len(tight.vocab)) if i not in own][:3]
        hybrid.sentence.bias[others] = 20.0
    weights = tight.encode_queries([text]).word_weights
    searched = tight.term_dicts(weights, "query")[0]
    assert len(searched) == 3 and set(searched) <= {tight.vocab.words[i] for i in own}


@pytest.mark.skipif(
    not runs_in_bfloat16(torch.device("cpu")), reason="this CPU has no native bfloat16"
)
def test_search_reads_a_bfloat16_codebook_and_keeps_trainings_float32_words(
    model: LexVLA,
) -> None:
    assert model.text.sentence is not None
    stacked = model.text.sentence(QUERIES[:2]).clone()  # a normal tensor, for autograd
    ids = padded_word_ids(QUERIES[:2], model.vocab.index)
    with torch.inference_mode():  # searching: the bfloat16 copy
        fast = model.query_weights("sentence", stacked, ids)
    with torch.enable_grad():  # training: the float32 codebook itself
        exact = model.query_weights("sentence", stacked, ids).detach()
    assert model._query_codebook().dtype == torch.float32
    assert torch.allclose(fast, exact, atol=0.01)
    for a, b in zip(fast, exact):
        assert set(a.nonzero().flatten().tolist()) == set(b.nonzero().flatten().tolist())
