import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from model.__main__ import main


def test_encode_text_prints_top_words(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--model", "tiny-lite0", "--top", "5", "encode-text", "a dog on the beach"]) == 0
    out = capsys.readouterr().out
    assert "active words; top 5:" in out
    assert len(out.strip().splitlines()) == 6


def test_encode_image_prints_a_word_per_patch(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.png"
    Image.fromarray(np.full((64, 64, 3), 128, dtype=np.uint8)).save(path)
    assert main(["--model", "tiny-lite0", "encode-image", str(path), "--patches"]) == 0
    out = capsys.readouterr().out
    grid = out.split("top word per patch (2x2):")[1].strip().splitlines()
    assert len(grid) == 2 and all(len(row.split()) == 2 for row in grid)


def test_bad_arguments_exit_with_a_message(tmp_path: Path) -> None:
    for args in (["encode-text", "   "], ["encode-image", str(tmp_path / "missing.jpg")]):
        run = subprocess.run(
            [sys.executable, "-m", "model", "--model", "tiny-lite0", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 2
        assert "error:" in run.stderr and "Traceback" not in run.stderr
