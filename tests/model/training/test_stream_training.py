"""Streaming training on tiny random models: it learns, fine-tunes only what it should,
and its checkpoints (LoRA, unfrozen backbone blocks) load back to the same vectors."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from peft import PeftModel

from model import LexVLA, load_encoder
from model.finetuned import BACKBONE, LORA_DIR
from model.samples import sample_photos
from model.training.distributed import Process
from model.training.stream_sources import Record, open_source
from model.training.stream_trainer import StreamTrainer

from .stream_helpers import PHOTO_CAPTIONS, make_shards, tiny_settings

CAPTIONS = list(PHOTO_CAPTIONS.values())[:6]


def history(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


def vectors(model: LexVLA) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    model.text.reset_prefix_cache()
    photos = list(sample_photos().values())[:4]
    return model.encode_images(photos).word_weights, model.encode_texts(CAPTIONS).word_weights


def rounded_like_a_checkpoint(model: LexVLA) -> LexVLA:
    """The adapters as ``save_pretrained`` stores them (float16)."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in model.trainable_state():
                param.copy_(param.half().float())
    return model


def test_training_on_shards_lowers_the_loss_and_skips_a_corrupt_photo(
    photo_records: list[Record], tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8 broken")
    shards = make_shards([*photo_records, Record("bad", str(garbage), ("x",))], tmp_path / "s", 4)
    settings = tiny_settings(epochs=6, lr=3e-3, finetune_lr=1e-3, reg_weight=0.01)
    trainer = StreamTrainer(
        "tiny-dinov2", open_source(shards), tmp_path / "run", settings, Process()
    )
    trainer.fit()
    rows = history(tmp_path / "run")
    assert [r["step"] for r in rows] == list(range(1, 19))  # 14 samples // 4 x 6 epochs
    first, last = (sum(r["nce"] for r in part) / 3 for part in (rows[:3], rows[-3:]))
    assert last < first - 0.3 and last < math.log(4)
    # once a pass: 18 x 4 pairs are 5 passes over the 13 good photos and part of a sixth
    assert set(rows[-1]["skipped"]) == {"undecodable image"}
    assert rows[-1]["skipped"]["undecodable image"] in (5, 6)


def test_only_lora_adapters_and_biases_change(even_shards: Path, tmp_path: Path) -> None:
    trainer = StreamTrainer(
        "tiny-lite0", open_source(even_shards), tmp_path, tiny_settings(lr=1e-2), Process()
    )
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    changed = {k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(
        ".lora_" in k or ".adapter." in k or k.endswith(".bias") for k in changed
    )
    assert any(".lora_B." in k for k in changed) and "text.bias" in changed
    assert "image.bias" in changed and any(k.startswith("image.adapter.") for k in changed)
    assert not any(k.startswith("image.backbone.") or ".base_layer." in k for k in changed)


def test_a_lora_checkpoint_loads_merged_to_the_same_vectors(
    even_shards: Path, tmp_path: Path
) -> None:
    trainer = StreamTrainer(
        "tiny-lite0", open_source(even_shards), tmp_path, tiny_settings(lr=1e-2), Process()
    )
    folder = trainer.fit()
    assert (folder / LORA_DIR / "adapter_model.safetensors").is_file()
    unmerged = vectors(rounded_like_a_checkpoint(trainer.model))
    loaded = LexVLA.from_pretrained(folder)
    assert not any(".lora_" in k for k in loaded.state_dict())  # merged into the LM weights
    for trained, reloaded in zip(unmerged, vectors(loaded)):
        assert torch.allclose(trained, reloaded, atol=1e-5)
    # peft reads the same adapter, and its unmerged LM agrees with the merged one
    fresh = load_encoder("tiny-lite0")
    peft_lm = PeftModel.from_pretrained(fresh.text.lm, str(folder / LORA_DIR))
    ids = torch.tensor([fresh.text.prefix_ids])
    with torch.no_grad():
        expected = peft_lm(input_ids=ids).logits
        assert torch.allclose(loaded.text.lm(input_ids=ids).logits, expected, atol=1e-5)
    without_lora = tmp_path / "without-lora"
    shutil.copytree(folder, without_lora)
    shutil.rmtree(without_lora / LORA_DIR)
    assert LexVLA.from_pretrained(without_lora).fingerprint() != loaded.fingerprint()


def test_the_differentiable_lm_path_matches_the_cached_one() -> None:
    model = load_encoder("tiny-lite0")
    cached = model.text.lm_features(CAPTIONS)
    live = model.text.trainable_lm_features(CAPTIONS)
    assert torch.allclose(cached.stacked(), live.stacked(), atol=1e-5)


def test_unfrozen_backbone_blocks_train_and_load_back(even_shards: Path, tmp_path: Path) -> None:
    settings = tiny_settings(unfreeze_blocks=1, lora_rank=0, finetune_lr=1e-2)
    trainer = StreamTrainer("tiny-dinov2", open_source(even_shards), tmp_path, settings, Process())
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    folder = trainer.fit()
    changed = {k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])}
    tuned = {k for k in changed if k.startswith("image.backbone.")}
    assert tuned and all(".layer.1." in k or ".layernorm." in k for k in tuned)
    assert not any(k.startswith("text.lm.") for k in changed)
    assert (folder / BACKBONE).is_file() and not (folder / LORA_DIR).exists()
    for trained, reloaded in zip(
        vectors(rounded_like_a_checkpoint(trainer.model)), vectors(load_encoder(folder))
    ):
        assert torch.allclose(trained, reloaded, atol=1e-5)


def test_seeds_decide_the_initialisation(even_shards: Path, tmp_path: Path) -> None:
    shards = open_source(even_shards)

    def params(seed: int) -> dict[str, torch.Tensor]:
        trainer = StreamTrainer("tiny-lite0", shards, tmp_path, tiny_settings(seed=seed), Process())
        return {k: v.detach().clone() for k, v in trainer.params.items()}

    zero, again, one = params(0), params(0), params(1)
    assert all(torch.equal(zero[k], again[k]) for k in zero)
    lora_a = [k for k in zero if ".lora_A." in k]
    assert lora_a and not any(torch.equal(zero[k], one[k]) for k in lora_a)
    assert not torch.equal(zero["image.adapter.up.weight"], one["image.adapter.up.weight"])


def test_resuming_with_other_settings_is_refused(even_shards: Path, tmp_path: Path) -> None:
    shards = open_source(even_shards)
    StreamTrainer("tiny-lite0", shards, tmp_path, tiny_settings(save_every=1), Process()).fit()
    for changes, message in (
        ({"lr": 0.5}, r"other settings \(lr\)"),
        ({"workers": 2}, "1 data readers.*has 1 with 2"),
    ):
        trainer = StreamTrainer("tiny-lite0", shards, tmp_path, tiny_settings(**changes), Process())
        with pytest.raises(ValueError, match=message):
            trainer.fit()
    with pytest.raises(ValueError, match="other data"):
        StreamTrainer("tiny-lite0", shards[:3], tmp_path, tiny_settings(), Process()).fit()
