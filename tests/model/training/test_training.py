"""Training, evaluation and the dense baseline on tiny random features."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from model import LexVLA, load_encoder
from model.class_words import ClassWords
from model.config import load_named_config
from model.training.class_prior import with_prior
from model.training.dense import train_dense_baseline
from model.training.evaluate import encode_split, frequent_words, lexical_retrieval
from model.training.objective import TrainSettings
from model.training.retrieval import dense_report
from model.training.splits import SplitFeatures, sample_batches, word_targets
from model.training.starting_model import build_model
from model.training.teacher import Teacher
from model.training.trainer import Trainer


def toy_split(model: LexVLA, images: int, seed: int) -> SplitFeatures:
    """Random patch features whose captions are noisy copies of a per-image signal."""
    g = torch.Generator().manual_seed(seed)
    dim = int(model.image.adapter.norm.normalized_shape[0])
    hidden = int(model.codebook.shape[1])
    signal = torch.randn(images, hidden, generator=g)
    patches = signal[:, None, :].repeat(1, 4, dim // hidden + 1)[..., :dim]
    patches = patches + 0.1 * torch.randn(images, 4, dim, generator=g)
    text_dim = int(model.text.adapter.norm.normalized_shape[0])
    captions = signal.repeat_interleave(2, 0).repeat(1, text_dim // hidden + 1)[:, :text_dim]
    captions = captions + 0.1 * torch.randn(captions.shape, generator=g)
    own = torch.randint(len(model.vocab), (images, 3), generator=g)  # each image's words
    return SplitFeatures(patches.half(), None, captions, 2, own.repeat_interleave(2, 0))


def fresh(seed: int = 0) -> LexVLA:
    """A fresh tiny model whose adapters are initialised from ``seed`` (as ``train`` does)."""
    return LexVLA.from_config(load_named_config("tiny-lite0"), seed)


def settings(**changes: object) -> TrainSettings:
    base = {"epochs": 3, "batch_size": 16, "lr": 3e-3, "reg_warmup_epochs": 1}
    return TrainSettings(**(base | changes))  # type: ignore[arg-type]


def test_sample_batches_pairs_each_image_with_one_of_its_captions() -> None:
    split = SplitFeatures(
        torch.arange(6.0)[:, None, None].expand(6, 2, 3).half(),
        None,
        torch.arange(12.0)[:, None].expand(12, 4),
        per=2,
    )
    seen = []
    for images, captions, rows in sample_batches(split, 3, torch.Generator().manual_seed(0)):
        assert images.shape == (3, 2, 3) and images.dtype == torch.float32
        assert torch.equal(captions[:, 0], rows.float())
        for img, cap in zip(images[:, 0, 0].tolist(), captions[:, 0].tolist()):
            assert int(cap) // 2 == int(img)
            seen.append(int(img))
    assert sorted(seen) == list(range(6))


@pytest.mark.parametrize(
    ("regulariser", "train_top_k"), [("overuse", True), ("flops", True), ("none", False)]
)
def test_training_improves_recall_and_keeps_the_best(
    regulariser: str, train_top_k: bool, tmp_path: Path
) -> None:
    model = load_encoder("tiny-lite0")
    train, dev = toy_split(model, 64, 0), toy_split(model, 32, 1)
    before = lexical_retrieval(model, dev)
    run = settings(regulariser=regulariser, train_top_k=train_top_k)
    history = Trainer(model, train, dev, run, tmp_path).fit()
    assert len(history) == 3
    best = load_encoder(tmp_path / "best")
    after = lexical_retrieval(best, dev)
    assert after.i2t[1] + after.t2i[1] > before.i2t[1] + before.t2i[1]
    assert max(h["dev_i2t_r1"] + h["dev_t2i_r1"] for h in history) == pytest.approx(
        after.i2t[1] + after.t2i[1]
    )


def test_a_killed_run_resumes_to_the_same_result(tmp_path: Path) -> None:
    full_model = fresh()
    train, dev = toy_split(full_model, 64, 0), toy_split(full_model, 32, 1)
    Trainer(full_model, train, dev, settings(), tmp_path / "full").fit()

    cut = Trainer(fresh(), train, dev, settings(), tmp_path / "cut")
    epoch = cut.run_epoch
    calls = []

    def dies_in_the_second_epoch() -> dict[str, float]:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return epoch()

    cut.run_epoch = dies_in_the_second_epoch  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        cut.fit()

    resumed_model = fresh()
    history = Trainer(resumed_model, train, dev, settings(), tmp_path / "cut").fit()
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for key, value in full_model.trainable_state().items():
        assert torch.allclose(value, resumed_model.trainable_state()[key], atol=1e-6), key
    with pytest.raises(ValueError, match="other settings"):
        Trainer(load_encoder("tiny-lite0"), train, dev, settings(lr=1.0), tmp_path / "cut").fit()


def test_the_seed_decides_the_adapters_and_the_frozen_parts_stay_the_same() -> None:
    first, again, other = fresh(0), fresh(0), fresh(1)
    for key, value in first.trainable_state().items():
        assert torch.equal(value, again.trainable_state()[key]), key
    state, other_state = first.trainable_state(), other.trainable_state()
    changed = [key for key, value in state.items() if not torch.equal(value, other_state[key])]
    assert any(".adapter." in key for key in changed)
    frozen = dict(first.image.backbone.state_dict())
    for key, value in other.image.backbone.state_dict().items():
        assert torch.equal(value, frozen[key]), key  # a random frozen part is one network
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    fresh(1)
    assert torch.equal(torch.rand(3), expected), "building a model leaves the global generator"


def test_a_fresh_model_is_the_same_whatever_the_thread_count() -> None:
    # the service sets torch's threads; an index built by a process with another setting
    # must still carry the service's model fingerprint
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = fresh(0)
        torch.set_num_threads(1)
        one = fresh(0)
    finally:
        torch.set_num_threads(threads)
    assert two.fingerprint() == one.fingerprint()


def test_dense_baseline_learns_the_toy_pairs() -> None:
    model = load_encoder("tiny-lite0")
    baseline = train_dense_baseline(toy_split(model, 64, 0), epochs=20, batch_size=16, width=64)
    images, captions = baseline.encode(toy_split(model, 32, 1))
    assert images.shape == (32, 512) and captions.shape == (64, 512)
    assert dense_report(images, captions).i2t[1] > 50


def test_the_dense_baseline_averages_mirror_images_when_asked() -> None:
    model = load_encoder("tiny-lite0")
    baseline = train_dense_baseline(toy_split(model, 64, 0), epochs=2, batch_size=16, width=64)
    split = toy_split(model, 8, 1)
    with pytest.raises(ValueError, match="mirrored features"):
        baseline.encode(split, average_mirror=True)
    other = toy_split(model, 8, 2).images  # stands in for the mirrored features
    plain = baseline.encode(split)[0]
    averaged = baseline.encode(replace(split, flipped=other), True)[0]
    alone = baseline.encode(replace(split, images=other))[0]
    assert torch.allclose(averaged, (plain + alone) / 2, atol=1e-5)
    assert not torch.allclose(averaged, plain, atol=1e-3)


def test_distillation_needs_a_teacher_and_is_recorded(tmp_path: Path) -> None:
    model = load_encoder("tiny-lite0")
    train, dev = toy_split(model, 64, 0), toy_split(model, 32, 1)
    with pytest.raises(ValueError, match="teacher is needed"):
        Trainer(model, train, dev, settings(distill_weight=1.0), tmp_path)
    embeddings = torch.nn.functional.normalize(train.captions[:, :24], dim=1)
    teacher = Teacher(
        train_dense_baseline(
            SplitFeatures(train.images, None, embeddings, train.per),
            epochs=5,
            batch_size=16,
            width=64,
        ),
        embeddings,
    )
    history = Trainer(model, train, dev, settings(distill_weight=1.0), tmp_path, teacher).fit()
    assert all(row["distill"] > 0 for row in history)


def test_frequent_words_name_the_words_most_images_keep(tiny_lite0: LexVLA) -> None:
    vocab = len(tiny_lite0.vocab)
    weights = torch.zeros(4, vocab)
    weights[:, 5] = 1.0  # every image keeps word 5
    weights[:2, 7] = 0.5  # half keep word 7
    frequent = frequent_words(tiny_lite0, weights, n=2)
    assert frequent == [f"{tiny_lite0.vocab.words[5]} 100", f"{tiny_lite0.vocab.words[7]} 50"]


def test_a_run_with_the_class_prior_keeps_its_class_words(tmp_path: Path) -> None:
    model = load_encoder("tiny-lite0")
    words = ClassWords.from_weights(torch.rand(1000, len(model.vocab)), 3)
    with_prior(model, words, 0.1)
    train, dev = toy_split(model, 64, 0), toy_split(model, 32, 1)
    Trainer(model, train, dev, settings(epochs=1), tmp_path).fit()
    best = load_encoder(tmp_path / "best")
    assert best.config.class_prior == 0.1
    assert best.class_words is not None
    assert torch.equal(best.class_words.indices, words.indices)


@pytest.mark.parametrize("lm_features", [True, False])
def test_train_only_changes_nothing_but_the_named_query_encoders(
    tmp_path: Path, lm_features: bool
) -> None:
    model, untrained = build_model("tiny-lite0", '{"query_encoders": ["lm", "lookup"]}')
    before = {k: v.clone() for k, v in model.trainable_state().items()}
    train, dev = toy_split(model, 64, 0), toy_split(model, 32, 1)
    if not lm_features:  # the documents are fixed: the LM's caption features are not needed
        train = replace(train, captions=train.captions[:, :0], lm=False)
    history = Trainer(model, train, dev, settings(epochs=2, train_only="lookup"), tmp_path).fit()
    changed = {k for k, v in model.trainable_state().items() if not torch.equal(v, before[k])}
    assert untrained == {"lookup"} and changed == {"queries.lookup.weight"}
    assert len(history) == 2
    if not lm_features:
        with pytest.raises(ValueError, match="LM's caption features"):
            Trainer(model, train, dev, settings(epochs=1), tmp_path / "all")


def test_word_targets_are_the_distribution_of_each_images_caption_words(tiny_lite0: LexVLA) -> None:
    split = toy_split(tiny_lite0, 4, 0)
    assert split.words is not None
    targets = word_targets(split, torch.tensor([2]), len(tiny_lite0.vocab))[0]
    assert torch.allclose(targets.sum(), torch.tensor(1.0))
    assert set(targets.nonzero().flatten().tolist()) == set(split.words[4].tolist())


def test_short_text_queries_leave_the_caption_documents_whole() -> None:
    model, _ = build_model("tiny-lite0", '{"sparse": {"doc_top_k": 12, "text_query_top_k": 2}}')
    encoded = encode_split(model, toy_split(model, 8, 0))
    documents = (model.index_vectors(encoded.captions, "document") > 0).sum(dim=1)
    queries = (model.index_vectors(encoded.queries["lm"], "query") > 0).sum(dim=1)
    assert (documents == 12).all() and (queries == 2).all()


def test_a_checkpoint_may_average_mirror_images_but_not_change_its_backbone(
    tiny_lite0: LexVLA, tmp_path: Path
) -> None:
    tiny_lite0.save_pretrained(tmp_path)
    model, _ = build_model(str(tmp_path), '{"vision": {"average_mirror": true}}')
    assert model.config.vision == replace(tiny_lite0.config.vision, average_mirror=True)
    with pytest.raises(ValueError, match="may only change"):
        build_model(str(tmp_path), '{"vision": {"image_size": 320}}')
