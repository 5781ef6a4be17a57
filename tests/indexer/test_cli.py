import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from indexer import JobError, add, build
from indexer.cli import build_parser, main
from indexer.shards import BatchSpec, ShardStore
from indexer.sources import Source

from .conftest import fast_options, write_captioned

REPO = Path(__file__).resolve().parents[2]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_help_explains_every_flag() -> None:
    commands = subcommands()
    assert set(commands) == {"build", "add", "remove", "rebuild", "info"}
    for name, sub in commands.items():
        text = sub.format_help()
        for action in sub._actions:
            for flag in action.option_strings:
                assert flag in text, (name, flag)
            assert action.help, (name, action.option_strings)
    assert "--images" in subcommands()["build"].format_help()


def error_of(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["build", "--images", "{tmp}/nope", "--out", "{tmp}/x"],
            "image folder {tmp}/nope does not exist",
        ),
        (["build", "--manifest", "{tmp}/nope.jsonl", "--out", "{tmp}/x"], "does not exist"),
        (
            ["build", "--images", "{tmp}", "--root", "{tmp}", "--out", "{tmp}/x"],
            "--root only applies",
        ),
        (
            ["build", "--images", "{tmp}", "--out", "{tmp}/x", "--batch-size", "0"],
            "--batch-size must be",
        ),
        (["add", "--images", "{tmp}", "--index", "{tmp}/nope"], "no index at {tmp}/nope"),
        (["remove", "--ids", "a", "--index", "{tmp}/nope"], "no index at {tmp}/nope"),
        (["remove", "--ids-file", "{tmp}/ids.txt", "--index", "{tmp}"], "--ids-file"),
        (["rebuild", "--index", "{tmp}/nope"], "no index at {tmp}/nope"),
        (["info", "--index", "{tmp}/nope"], "no index at {tmp}/nope"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    tmp_path: Path, capsys, args: list[str], message: str
) -> None:  # type: ignore[no-untyped-def]
    args = [a.format(tmp=tmp_path) for a in args]
    err = error_of(args, capsys)
    assert message.format(tmp=tmp_path) in err and err.count("\n") == 1


def test_out_must_be_new_or_an_index(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "images").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file.txt").write_text("x")
    err = error_of(
        ["build", "--images", str(tmp_path / "images"), "--out", str(tmp_path / "other")], capsys
    )
    assert "exists and is not an index" in err
    err = error_of(
        [
            "build",
            "--images",
            str(tmp_path / "images"),
            "--out",
            str(tmp_path / "other" / "file.txt"),
        ],
        capsys,
    )
    assert "is a file" in err


def test_missing_model_or_gpu_leaves_nothing_behind(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "images").mkdir()
    out = tmp_path / "index"
    base = ["build", "--images", str(tmp_path / "images"), "--out", str(out), "--quiet"]
    assert "--model no-such-model" in error_of([*base, "--model", "no-such-model"], capsys)
    assert "--device cuda:99" in error_of([*base, "--device", "cuda:99"], capsys)
    assert not (out / "shards").exists()
    assert main([*base, "--model", "tiny-lite0", "--device", "cpu", "--workers", "0"]) == 0


def test_jobs_refuse_to_mix_with_an_unfinished_or_different_one(
    tmp_path: Path, tiny_lite0, capsys
) -> None:  # type: ignore[no-untyped-def]
    first = write_captioned(tmp_path / "first", 2)
    second = write_captioned(tmp_path / "second", 2, first_seed=10)
    root = tmp_path / "index"
    build(Source.manifest(first), root, fast_options(), model=tiny_lite0)
    err = error_of(["build", "--manifest", str(second), "--out", str(root)], capsys)
    assert "already holds an index" in err

    store = ShardStore(root / "shards")  # an add that was killed before its first shard
    store.create(
        BatchSpec(
            "add",
            Source.manifest(second).to_json(),
            model=store.batches()[0].spec.model,
            shard_size=4,
        ),
        Source.manifest(second).items(),
    )
    with pytest.raises(JobError, match="unfinished add"):
        build(Source.manifest(first), root, fast_options(), model=tiny_lite0)
    err = error_of(["remove", "--ids", "doc0", "--index", str(root)], capsys)
    assert f"unfinished add (--manifest {second})" in err and "run that command again" in err
    # the same add resumes it
    summary = add(Source.manifest(second), root, fast_options(), model=tiny_lite0)
    assert summary.indexed == 2 and summary.version == "v000002"

    assert main(["info", "--index", str(root)]) == 0
    assert '"version": "v000002"' in capsys.readouterr().out


def test_a_second_job_on_the_same_index_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "index" / "shards").mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
            "fcntl.lockf(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
            str(tmp_path / "index" / ".lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert "another indexer job" in error_of(
            ["rebuild", "--index", str(tmp_path / "index")], capsys
        )
    finally:
        holder.kill()
        holder.wait()


def test_errors_are_not_tracebacks(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "indexer",
            "build",
            "--images",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "x"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert "error: image folder" in run.stderr and "Traceback" not in run.stderr
