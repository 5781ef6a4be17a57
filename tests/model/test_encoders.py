"""The encoders on tiny random configs: every code path, in seconds."""

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from model import LexVLA, load_encoder
from model.backbones.efficientnet_lite import EfficientNetLite
from model.config import SparseConfig, load_named_config
from model.image_encoder import POOLINGS, smooth_patches
from model.sparse import activate
from model.training.evaluate import encode_images
from model.training.features import caption_features, feature_paths

CAPTIONS = [
    "A dog runs on the beach.",
    "Two dogs play in the snow while a black dog chases a brown dog near the water.",
    "A girl",
]


def photo(seed: int, size: tuple[int, int] = (90, 70)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def test_text_vectors_do_not_depend_on_batch_padding(tiny_lite0: LexVLA) -> None:
    batch = tiny_lite0.encode_texts(CAPTIONS).word_weights
    for i, caption in enumerate(CAPTIONS):
        alone = tiny_lite0.encode_texts([caption]).word_weights[0]
        assert (alone - batch[i]).abs().max() < 1e-4


def test_cached_prefix_equals_running_the_whole_prompt(tiny_lite0: LexVLA) -> None:
    text = tiny_lite0.text
    suffix = text._tokenize([CAPTIONS[0]])[0][0]
    ids = torch.tensor([text.prefix_ids + suffix])
    with torch.inference_mode():
        full = text.lm.model(input_ids=ids).last_hidden_state[0, -1]
    cached = text.lm_features([CAPTIONS[0]]).end[0]
    assert torch.allclose(full, cached, atol=1e-5)


def test_cached_caption_features_give_the_encoded_vectors(tmp_path: Path) -> None:
    model = load_encoder("tiny-lite0")
    with torch.no_grad():  # a trained-looking adapter, so every input matters
        model.text.adapter.down.weight.normal_(std=0.5)
    assert model.text.sentence is not None
    paths = feature_paths(tmp_path, "dev", model.config)
    features = caption_features(model, CAPTIONS, paths["text"], paths["sentences"], batch_size=2)
    assert features.sentence is not None
    assert features.sentence.shape == (3, model.text.sentence.dim)
    assert torch.allclose(features.sentence.norm(dim=1), torch.ones(3), atol=1e-5)
    assert paths["sentences"].is_file() and paths["text"].is_file()
    cached = caption_features(model, CAPTIONS, paths["text"], paths["sentences"])
    assert torch.equal(cached.stacked(), features.stacked())
    encoded = model.encode_texts(CAPTIONS).word_weights
    assert torch.allclose(model.text_weights(features.stacked()), encoded, atol=1e-5)
    for i, caption in enumerate(CAPTIONS):  # the sentence side is padding-invariant too
        alone = model.encode_texts([caption]).word_weights[0]
        assert (alone - encoded[i]).abs().max() < 1e-4
    without = features.stacked().clone()
    without[:, -model.text.sentence.dim :] = 0
    assert not torch.allclose(model.text_weights(without), encoded, atol=1e-3)


def test_text_weights_are_sparse_non_negative_and_normalised(tiny_lite0: LexVLA) -> None:
    w = tiny_lite0.encode_texts(CAPTIONS).word_weights
    assert w.shape == (3, len(tiny_lite0.vocab))
    assert (w >= 0).all()
    assert torch.allclose(w.norm(dim=1), torch.ones(3), atol=1e-5)


@pytest.mark.parametrize("fixture", ["tiny_lite0", "tiny_dinov2"])
def test_image_side_patches_pool_into_the_image_vector(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    model: LexVLA = request.getfixturevalue(fixture)
    images = [photo(0), photo(1, (40, 120))]
    out = model.encode_patches(images, batch_size=1)
    rows, cols = out.grid
    assert out.patch_word_weights.shape == (2, rows * cols, len(model.vocab))
    # max pooling (the tiny configs): the image vector is the normalised max over patches
    pooled = torch.nn.functional.normalize(out.patch_word_weights.amax(dim=1), dim=-1)
    assert torch.allclose(model.encode_images(images).word_weights, pooled, atol=1e-6)


def test_patch_window_averages_each_patch_with_its_neighbours() -> None:
    grid = torch.arange(9.0).view(1, 9, 1)  # a 3x3 grid, one feature: 0..8 row-major
    assert torch.equal(smooth_patches(grid, 1), grid)
    smoothed = smooth_patches(grid, 3).flatten()
    assert smoothed[4] == 4.0  # the centre sees the whole grid
    assert smoothed[0] == (0 + 1 + 3 + 4) / 4  # a corner sees its 2x2 corner, no padding
    with pytest.raises(ValueError, match="odd"):
        smooth_patches(grid, 2)


def test_poolings_on_hand_checkable_patches(tiny_lite0: LexVLA) -> None:
    image = tiny_lite0.image
    features = torch.randn(2, 4, 1280)
    logits = image.patch_logits(features, tiny_lite0.codebook)  # (2, 4, vocab)
    latent = image.pooled_logits(features, tiny_lite0.codebook, "latent")
    assert torch.allclose(latent, logits.mean(dim=1), atol=1e-5)
    maxed = activate(image.pooled_logits(features, tiny_lite0.codebook, "max"))
    assert torch.allclose(maxed, activate(logits).amax(dim=1))  # the paper's max of weights
    same = features[:, :1].expand(2, 4, 1280)  # identical patches: every pooling agrees
    pooled = [image.pooled_logits(same, tiny_lite0.codebook, p) for p in POOLINGS]
    assert all(torch.allclose(pooled[0], p, atol=1e-5) for p in pooled[1:])
    with pytest.raises(ValueError, match="unknown pooling"):
        image.pooled_logits(features, tiny_lite0.codebook, "sum")


def test_larger_inputs_give_finer_grids(tiny_lite0: LexVLA) -> None:
    assert tiny_lite0.encode_patches([photo(0)]).grid == (2, 2)
    assert tiny_lite0.encode_patches([photo(0)], image_size=128).grid == (4, 4)


def test_feature_caches_are_named_by_the_frozen_parts(tmp_path: Path) -> None:
    lite0 = load_named_config("tiny-lite0")
    lite2 = lite0.merged({"vision": {"backbone": "efficientnet-lite2", "image_size": 260}})
    one, other = feature_paths(tmp_path, "train", lite0), feature_paths(tmp_path, "train", lite2)
    assert one["image"] != other["image"] and one["image_flip"] != other["image_flip"]
    assert one["text"] == other["text"] and one["sentences"] == other["sentences"]


def test_efficientnet_grid_follows_tensorflow_same_padding() -> None:
    net = EfficientNetLite().eval()
    with torch.inference_mode():
        assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 49, 1280)
        assert net(torch.zeros(1, 3, 448, 448)).shape == (1, 196, 1280)
        assert net.classify(torch.zeros(2, 3, 100, 100)).shape == (2, 1000)


@pytest.mark.parametrize("name", ["tiny-lite0", "tiny-dinov2"])
def test_save_and_load_round_trip(name: str, tmp_path: Path) -> None:
    model = load_encoder(name)
    with torch.no_grad():  # make the adapters differ from a fresh init
        for p in model.image.adapter.parameters():
            p.add_(0.05)
        model.text.adapter.down.weight.add_(0.01)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = load_encoder(tmp_path / "ckpt")
    assert loaded.vocab == model.vocab and loaded.config == model.config
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    images = [photo(3)]  # adapters are stored in float16: equal to its precision
    assert torch.allclose(
        model.encode_images(images).word_weights,
        loaded.encode_images(images).word_weights,
        atol=2e-3,
    )
    assert torch.allclose(
        model.encode_texts(CAPTIONS).word_weights,
        loaded.encode_texts(CAPTIONS).word_weights,
        atol=2e-3,
    )


def test_index_vectors_apply_role_top_k_and_quantization(tiny_lite0: LexVLA) -> None:
    w = tiny_lite0.encode_texts(CAPTIONS).word_weights
    sparse = tiny_lite0.config.sparse
    docs = tiny_lite0.index_vectors(w, "document")
    queries = tiny_lite0.index_vectors(w, "query")
    assert ((docs > 0).sum(1) <= sparse.doc_top_k).all()
    assert ((queries > 0).sum(1) <= sparse.query_top_k).all()
    for row, doc in zip(w, docs):  # the highest words, renormalised, in integer impacts
        kept = doc > 0
        assert row[kept].min() >= row[~kept].max()
        assert abs(float((doc / sparse.quant_scale).norm()) - 1) < 0.01
        scaled = row[kept] / row[kept].norm() * sparse.quant_scale
        assert torch.equal(doc[kept], torch.round(scaled).long())
    terms = tiny_lite0.term_dicts(w, "query")[0]
    assert all(word in tiny_lite0.vocab.index for word in terms)
    assert list(terms.values()) == sorted(terms.values(), reverse=True)
    with pytest.raises(ValueError, match="role"):
        tiny_lite0.index_vectors(w, "both")


def test_bad_names_and_configs_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="neither a checkpoint folder nor a named config"):
        load_encoder("no-such-model")
    with pytest.raises(FileNotFoundError, match="not a LexVLA checkpoint"):
        LexVLA.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="clause limit"):
        SparseConfig(doc_top_k=2048)


def test_a_caption_longer_than_every_model_window_is_truncated(tiny_lite0: LexVLA) -> None:
    long = "0" * 5000
    weights = tiny_lite0.encode_texts([long, CAPTIONS[0]]).word_weights
    assert weights.shape == (2, len(tiny_lite0.vocab)) and torch.isfinite(weights).all()


def test_averaging_mirror_images_gives_a_photo_and_its_mirror_image_one_vector(
    tiny_dinov2: LexVLA,
) -> None:
    picture = photo(3, (64, 64))
    pair = [picture, ImageOps.mirror(picture)]
    plain = tiny_dinov2.encode_images(pair).word_weights
    assert not torch.allclose(plain[0], plain[1], atol=1e-3)  # position embeddings differ
    averaging = copy.deepcopy(tiny_dinov2)
    vision = replace(averaging.config.vision, average_mirror=True)
    averaging.config = replace(averaging.config, vision=vision)
    both = averaging.encode_images(pair).word_weights
    assert torch.allclose(both[0], both[1], atol=1e-5)
    for pictures_per_pass in (1, 2, 3):  # a pass holds images and their mirror images
        again = averaging.encode_images(pair, batch_size=pictures_per_pass).word_weights
        assert torch.allclose(again, both, atol=1e-5)
    assert torch.allclose(both[0], torch.nn.functional.normalize(plain.sum(0), dim=-1), atol=1e-5)
    assert averaging.fingerprint() != tiny_dinov2.fingerprint()
    patches = averaging.encode_patches(pair).patch_word_weights  # heatmaps: as given
    assert torch.allclose(patches, tiny_dinov2.encode_patches(pair).patch_word_weights)
    assert not torch.allclose(patches[0], patches[1], atol=1e-3)
    features = averaging.image.patch_features(averaging.image.pixels(pair))
    with pytest.raises(ValueError, match="mirrored features"):
        encode_images(averaging, features)
    cached = encode_images(averaging, features, features.flip(0))
    assert torch.allclose(cached[0], both[0], atol=1e-5)
