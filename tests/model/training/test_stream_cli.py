"""The streaming commands' flags, and recall from live encodings (``evaluate --live``)."""

import json
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from model import load_encoder
from model.training.cli import build_parser, main
from model.training.data import load_split
from model.training.live_eval import encode_pairs
from model.training.stream_settings import StreamSettings
from model.training.stream_sources import Record


def test_every_stream_train_flag_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["stream-train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for spec in fields(StreamSettings):
        assert f"--{spec.name.replace('_', '-')}" in text
        assert " ".join(spec.metadata["help"].split()) in text


def test_bad_settings_are_refused() -> None:
    for changes in ({"precision": "fp8"}, {"regulariser": "l1"}, {"batch_size": 0}):
        with pytest.raises(ValueError):
            StreamSettings(**changes)  # type: ignore[arg-type]


def test_live_evaluation_encodes_the_split_from_its_files(
    photo_records: list[Record], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"image": Path(r.path).name, "split": "dev", "captions": [r.captions[0], "a photo"]}
        for r in photo_records[:4]
    ]
    (tmp_path / "images").mkdir()
    for record in photo_records[:4]:
        (tmp_path / "images" / Path(record.path).name).write_bytes(Path(record.path).read_bytes())
    (tmp_path / "captions.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    model = load_encoder("tiny-dinov2")
    model.save_pretrained(tmp_path / "ckpt")
    argv = ["evaluate", "--data", str(tmp_path), "--model", str(tmp_path / "ckpt"), "--live"]
    assert main([*argv, "--json", str(tmp_path / "r.json")]) == 0
    assert "(tiny-dinov2) on" in capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())[str(tmp_path / "ckpt")]["lexical"]
    images, captions = encode_pairs(model, load_split(tmp_path, "dev"))
    assert images.shape == (4, len(model.vocab)) and captions.shape == (8, len(model.vocab))
    expected = model.encode_texts([rows[1]["captions"][0]]).word_weights[0]
    assert torch.allclose(captions[2], expected, atol=1e-6)
    assert set(report) >= {"i2t", "t2i"} and 0 <= report["i2t"]["1"] <= 100
