"""A version served by its search shards: the API's side of the sharded service.

:class:`ShardedIndex` is what the engine serves on Ray (:mod:`service.cluster`): a search
asks every shard deployment for its top k of the same version at once and merges them
(:func:`service.ranked.merge`, exactly one index's ranking); an image row is asked of the
shard its id hashes to. A shard that fails or does not answer within ``timeout_s`` makes
the request fail with :class:`ShardUnavailableError` (503) naming it: no partial answer.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexer import (
    ImageRow,
    IndexNotFoundError,
    PublishedIndex,
    TwoPhase,
    open_published,
    shard_of,
)

from .index_handle import IndexOpenError
from .metrics import Metrics
from .query import Target
from .ranked import RankedDoc, merge

if TYPE_CHECKING:
    from ray.serve.handle import (
        DeploymentHandle,
        DeploymentResponse,
        DeploymentResponseGenerator,
    )

    Response = DeploymentResponse[Any] | DeploymentResponseGenerator[Any]


class ShardUnavailableError(RuntimeError):
    """A search shard did not answer (503)."""


def shard_name(number: int) -> str:
    """The deployment name of search shard ``number``."""
    return f"shard-{number:03d}"


class ShardedIndex:
    """One published version, searched by its shards' deployments (one handle each)."""

    def __init__(
        self, published: PublishedIndex, shards: Sequence[DeploymentHandle], timeout_s: float
    ) -> None:
        self.published = published
        self.version = published.version
        self.shards = list(shards)
        self.timeout_s = timeout_s

    def search(
        self,
        target: Target,
        terms: dict[str, int],
        k: int,
        metrics: Metrics,
        plan: TwoPhase | None = None,
    ) -> list[RankedDoc]:
        with metrics.timed("shards"):
            calls = [
                shard.search.remote(self.version, target, terms, k, plan) for shard in self.shards
            ]
            rankings = [self._answer(number, call) for number, call in enumerate(calls)]
        return merge(rankings, k)

    def images(self, ids: Sequence[str]) -> list[ImageRow]:
        groups: dict[int, list[str]] = defaultdict(list)
        for image_id in ids:
            groups[shard_of(image_id, len(self.shards))].append(image_id)
        calls = {
            n: self.shards[n].images.remote(self.version, group) for n, group in groups.items()
        }
        rows = {row.id: row for n, call in calls.items() for row in self._answer(n, call)}
        return [rows[image_id] for image_id in ids if image_id in rows]

    def _answer(self, number: int, call: Response) -> Any:
        """The shard's answer, or :class:`ShardUnavailableError` naming it."""
        from ray.exceptions import RayError
        from ray.serve.exceptions import RayServeException

        where = f"search shard {number} ({shard_name(number)}) of {len(self.shards)}"
        try:
            return call.result(timeout_s=self.timeout_s)
        except TimeoutError as exc:
            call.cancel()
            raise ShardUnavailableError(
                f"{where} did not answer within {self.timeout_s:g} s; no partial answer "
                "is served: retry when the shard is back"
            ) from exc
        except (RayError, RayServeException) as exc:
            raise ShardUnavailableError(
                f"{where} failed: {type(exc).__name__}: {str(exc)[:300]}; no partial answer "
                "is served"
            ) from exc

    # The shard searchers keep the versions they are asked about open themselves.
    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass

    def retire(self) -> None:
        pass


def open_sharded(root: Path, shards: Sequence[DeploymentHandle], timeout_s: float) -> ShardedIndex:
    """The published version of ``root`` over the deployed shards; :class:`IndexOpenError`
    when there is none or its shards are not the deployed ones."""
    try:
        published = open_published(root)
    except IndexNotFoundError as exc:
        raise IndexOpenError(str(exc)) from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise IndexOpenError(f"the manifest of the index at {root} is unreadable: {exc}") from exc
    if published.shards != len(shards):
        raise IndexOpenError(
            f"version {published.version} of {root} has {published.shards} search shards, "
            f"{len(shards)} are deployed: start the service again to serve it"
        )
    return ShardedIndex(published, shards, timeout_s)
