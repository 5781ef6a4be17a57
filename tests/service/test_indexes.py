"""Several named indexes in one service: naming them, each answering from its own
documents, and a new version of one swapped in without disturbing the other."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from indexer import JobOptions, MetadataStore, Source, add, open_published
from model import LexVLA
from service import Settings, create_app
from service.__main__ import EXIT_CONFIG, main, settings_from

KEY = {"X-API-Key": "key"}


def document_ids(index: Path) -> set[str]:
    with MetadataStore(open_published(index).metadata) as store:
        images = store.image_ids()
        return set(images) | {c.id for i in images for c in store.captions_of(i)}


@pytest.fixture
def indexes(tiny_index: Path, more_index: Path, tmp_path: Path) -> dict[str, Path]:
    """Copies of both indexes (tests publish new versions of them)."""
    return {
        name: Path(shutil.copytree(index, tmp_path / name, symlinks=True))
        for name, index in (("photos", tiny_index), ("more", more_index))
    }


@pytest.fixture
def served(indexes: dict[str, Path]) -> Iterator[TestClient]:
    # No periodic reloads: only /admin/reload swaps, so each test knows when.
    settings = Settings(index=indexes, reload_interval_s=3600, admin_api_key="key")
    with TestClient(create_app(settings)) as client:
        yield client


def test_indexes_are_named_on_the_command_line(
    tiny_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = settings_from(["--index", str(tiny_index), "--index", "more=/data/more"])
    assert given.index == {"photos": tiny_index, "more": Path("/data/more")}
    monkeypatch.setenv("LEXSEARCH_INDEX", '["a=/x/one", "/y/two"]')
    assert settings_from([]).index == {"a": Path("/x/one"), "two": Path("/y/two")}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--index", "{tiny}"], "two indexes are named 'photos': give one as NAME=PATH"),
        (["--index", "/data/my photos"], "cannot name the index '/data/my photos' after its"),
        (["--index", "second=/no/such/index"], "no published index at /no/such/index"),
        (["--index", "more=/data/more", "--ray", "auto"], "with --ray the service serves one"),
    ],
)
def test_bad_index_lists_are_refused_at_start(
    tiny_index: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = ["--index", str(tiny_index), *(a.format(tiny=tiny_index) for a in extra)]
    assert main(argv) == EXIT_CONFIG
    assert message in capsys.readouterr().err


def test_each_index_answers_from_its_own_documents(
    served: TestClient, indexes: dict[str, Path]
) -> None:
    assert served.get("/indices-list").json() == ["photos", "more"]
    for name, index in indexes.items():
        for target in ("images", "captions"):
            params = {"q": "a brown cat sleeps", "index": name, "target": target, "k": 20}
            answer = served.get("/search", params=params).json()
            assert answer["index"] == name and answer["hits"]
            assert {hit["id"] for hit in answer["hits"]} <= document_ids(index)
            for hit in answer["hits"]:
                urls = hit["metadata"]["image_url"], hit["metadata"]["thumbnail_url"]
                assert all(("?index=more" in url) == (name == "more") for url in urls)
                assert all(served.get(url).status_code == 200 for url in urls)
        stats = served.get("/stats", params={"index": name}).json()
        manifest = open_published(index).manifest
        assert (stats["index"], stats["images"], stats["captions"]) == (
            name,
            manifest.images,
            manifest.captions,
        )
    assert served.get("/stats").json()["index"] == "photos", "the first is the default"
    assert served.get("/images/cat-a.png").status_code == 404, "not in the default index"
    hit = served.get("/search", params={"q": "a cat", "index": "more"}).json()["hits"][0]
    word = hit["matches"][0]["word"]
    heatmap = served.get(f"/heatmaps/{hit['image_id']}", params={"index": "more", "word": word})
    assert heatmap.status_code == 200 and heatmap.json()["image_id"] == hit["image_id"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/search?q=a+dog&index=nope"),
        ("GET", "/stats?index=nope"),
        ("GET", "/images/chelsea.jpg?index=nope"),
        ("GET", "/thumbnails/chelsea.jpg?index=nope"),
        ("GET", "/heatmaps/chelsea.jpg?word=cat&index=nope"),
        ("POST", "/admin/reload?index=nope"),
    ],
)
def test_an_unknown_index_is_404(served: TestClient, method: str, path: str) -> None:
    response = served.request(method, path, headers=KEY)
    assert response.status_code == 404
    assert response.json()["detail"] == "no index named 'nope'; this service serves: photos, more"


def test_a_new_version_of_one_index_does_not_disturb_the_other(
    served: TestClient, indexes: dict[str, Path], tmp_path: Path, tiny_lite0: LexVLA
) -> None:
    before = {name: open_published(index).version for name, index in indexes.items()}
    failures: list[str] = []
    seen: dict[str, set[tuple[str, frozenset[str]]]] = {"photos": set(), "more": set()}
    stop = threading.Event()

    def keep_searching(name: str) -> None:
        while not stop.is_set():
            answer = served.get("/search", params={"q": "a brown cat", "index": name, "k": 50})
            if answer.status_code != 200:
                failures.append(f"{name}: {answer.status_code} {answer.text}")
                continue
            hits = frozenset(hit["id"] for hit in answer.json()["hits"])
            seen[name].add((answer.json()["index_version"], hits))

    workers = [threading.Thread(target=keep_searching, args=(n,)) for n in ("photos", "more")]
    for worker in workers:
        worker.start()
    try:
        folder = tmp_path / "new"
        folder.mkdir()
        Image.new("RGB", (80, 60), "orange").save(folder / "orange.png")
        options = JobOptions(model="tiny-lite0", device="cpu", workers=0, progress=False)
        added = add(Source.folder(folder), indexes["more"], options, tiny_lite0)
        untouched = served.post("/admin/reload", params={"index": "photos"}, headers=KEY)
        assert untouched.json() == {
            "index": "photos",
            "version": before["photos"],
            "changed": False,
        }
        swapped = served.post("/admin/reload", params={"index": "more"}, headers=KEY)
        assert swapped.json() == {"index": "more", "version": added.version, "changed": True}
        served.get("/search", params={"q": "a brown cat", "index": "more"})
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert not failures, failures[:3]
    assert {version for version, _ in seen["photos"]} == {before["photos"]}
    assert len({hits for _, hits in seen["photos"]}) == 1, "the other index's answers never moved"
    assert {version for version, _ in seen["more"]} <= {before["more"], added.version}
    ready = served.get("/readyz").json()["indexes"]
    assert ready == {"photos": before["photos"], "more": added.version}
    stats = {n: served.get("/stats", params={"index": n}).json() for n in ("photos", "more")}
    assert (stats["photos"]["reloads"], stats["more"]["reloads"]) == (0, 1)
    assert stats["more"]["images"] == 4 and stats["photos"]["images"] == 13
    assert served.get("/images/orange.png", params={"index": "more"}).status_code == 200
