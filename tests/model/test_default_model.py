"""The real default weights end to end (EfficientNet-Lite0 + SmolLM2-135M + shipped adapters)."""

from pathlib import Path

import pytest
import torch
from PIL import ImageOps

from model import LexVLA, sentence
from model.samples import sample_photos
from model.sparse import top_words
from model.training.data import load_split
from model.training.sample_queries import sample_photo_ranks

pytestmark = pytest.mark.slow


def test_backbone_imagenet_head_sees_a_cat_in_chelsea(default_model: LexVLA) -> None:
    backbone = default_model.image.backbone
    pixels = default_model.image.pixels([sample_photos()["chelsea"]])
    with torch.inference_mode():
        probs = backbone.classify(pixels).softmax(-1)[0]
    assert int(probs.argmax()) in range(281, 286)  # ImageNet's domestic cat classes
    assert float(probs[281:286].sum()) > 0.5


def test_caption_top_words_are_its_content_words(default_model: LexVLA, flickr8k: Path) -> None:
    pairs = load_split(flickr8k, "dev")[:5]
    captions = [p.captions[0] for p in pairs]
    weights = default_model.encode_texts(captions).word_weights
    named = {}
    for caption, w in zip(captions, weights):
        top = [word for word, _ in top_words(w, default_model.vocab.words, 10)]
        stems = {word[:4] for word in caption.lower().split() if len(word) >= 3}
        # the trained text side expands (skateboard -> skate, skates): compare stems
        named[caption] = ([word for word in top if word[:4] in stems], top)
    # 4 of 5: the dog-and-tennis-ball caption gets sports words (batter, bat, player) today
    assert sum(len(found) >= 2 for found, _ in named.values()) >= 4, named


def test_a_cat_caption_ranks_chelsea_first_among_the_sample_photos(default_model: LexVLA) -> None:
    photos = sample_photos()
    images = default_model.encode_images(list(photos.values())).word_weights
    query = default_model.encode_queries(["a cat lying on a blanket"]).word_weights
    scores = (
        default_model.index_vectors(query, "query").double()
        @ default_model.index_vectors(images, "document").double().T
    )[0]
    ranking = [list(photos)[i] for i in scores.argsort(descending=True)]
    assert ranking[0] == "chelsea", ranking


def test_a_photo_and_its_mirror_image_get_the_same_words(default_model: LexVLA) -> None:
    assert default_model.config.vision.average_mirror  # the shipped setting
    photo = sample_photos()["chelsea"]
    weights = default_model.encode_images([photo, ImageOps.mirror(photo)]).word_weights
    own, mirrored = weights
    assert float((own - mirrored).abs().max()) <= 0.01 * float(own.max())
    assert set(own.topk(20).indices.tolist()) == set(mirrored.topk(20).indices.tolist())


def test_plain_queries_find_the_sample_photos_they_name(default_model: LexVLA) -> None:
    result = sample_photo_ranks(default_model)
    assert result.ranks["chelsea"] == 1, result.ranks
    # the shipped default: 5 of 13 first, 7 of 13 in the first three ("an astronaut" 6th)
    assert result.hit_rate(1) >= 5 / 13, result.ranks
    assert result.hit_rate(3) >= 7 / 13, result.ranks


@pytest.mark.skipif(
    not sentence.runs_in_bfloat16(torch.device("cpu")), reason="this CPU has no native bfloat16"
)
def test_minilm_in_bfloat16_keeps_the_float32_embeddings_and_query_words(
    default_model: LexVLA, flickr8k: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captions = [p.captions[0] for p in load_split(flickr8k, "dev")[:20]]
    encoder = default_model.text.sentence
    assert encoder is not None

    def encode() -> tuple[torch.Tensor, list[dict[str, int]]]:
        weights = default_model.encode_queries(captions).word_weights
        return encoder(captions), default_model.term_dicts(weights, "query")

    fast, fast_words = encode()
    monkeypatch.setattr(sentence, "runs_in_bfloat16", lambda device: False)
    exact, exact_words = encode()
    assert float((fast * exact).sum(-1).min()) > 0.9999
    shared = [len(a.keys() & b.keys()) / len(b) for a, b in zip(fast_words, exact_words)]
    assert sum(shared) / len(shared) > 0.98, shared
