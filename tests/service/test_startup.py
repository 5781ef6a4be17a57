"""Start-up with a missing or broken index, or a bad setting: a clear message and exit code 2."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer import JobOptions, rebuild
from service import create_app
from service.__main__ import EXIT_CONFIG, main
from service.index_handle import ModelMismatchError

from .conftest import REPO, index_settings


def test_the_cli_explains_a_missing_index_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--index", str(tmp_path / "nothing")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == EXIT_CONFIG
    assert "error: no published index at" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def _manifest(version: Path) -> None:
    (version / "manifest.json").write_text('{"version": "v1", "model": ')


def _lucene_folder(version: Path) -> None:
    shutil.rmtree(version / "images")


def _lucene_segments(version: Path) -> None:
    for segments in (version / "captions").glob("segments_*"):
        segments.write_bytes(b"\x00garbage" * 10)


def _metadata(version: Path) -> None:
    (version / "meta.sqlite").unlink()


def _metadata_garbage(version: Path) -> None:
    (version / "meta.sqlite").write_bytes(b"not a database at all" * 100)


def _current_link(version: Path) -> None:
    shutil.rmtree(version)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_manifest, "manifest of the index"),
        (_lucene_folder, "is not a Lucene index"),
        (_lucene_segments, "incomplete or damaged"),
        (_metadata, "no metadata store"),
        (_metadata_garbage, "incomplete or damaged"),
        (_current_link, "no published index"),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else "",
)
def test_a_broken_index_is_named_and_refused(
    tiny_index: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[Path], None],
    message: str,
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_index, broken, symlinks=True)
    damage((broken / "current").resolve())
    assert main(["--index", str(broken)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no-such-model"], "model 'no-such-model' is neither"),
        (["--port", "http"], "--port (LEXSEARCH_PORT): Input should be a valid integer"),
        (["--max-batch", "0"], "--max-batch (LEXSEARCH_MAX_BATCH): Input should be greater"),
        (["--bogus"], None),
    ],
)
def test_bad_settings_are_refused(
    tiny_index: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str | None
) -> None:
    try:
        code = main(["--index", str(tiny_index), *args])
    except SystemExit as exit_:  # argparse's own usage error
        code = int(exit_.code or 0)
    assert code == EXIT_CONFIG
    if message:
        assert message in capsys.readouterr().err


def test_serving_an_index_with_another_model_is_refused(tiny_index: Path) -> None:
    app = create_app(index_settings(tiny_index, model="tiny-dinov2"))
    with (
        pytest.raises(ModelMismatchError, match=r"fingerprint .* --model tiny-lite0"),
        TestClient(app),
    ):
        pass


def test_an_index_in_search_shards_is_refused_in_one_process_with_the_way_to_serve_it(
    tiny_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_index, sharded, symlinks=True)
    rebuild(sharded, JobOptions(search_shards=2, progress=False))
    assert main(["--index", str(sharded)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "published in 2 search shards: serve it on Ray (python -m service --ray" in err
    assert main(["--index", str(sharded / "missing"), "--ray", "auto"]) == EXIT_CONFIG
    assert "no published index at" in capsys.readouterr().err  # before joining any cluster
