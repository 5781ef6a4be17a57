"""One search shard's searcher: what each replica of a shard deployment runs on Ray Serve.

A replica is its own process with its own JVM: it opens its shard of whichever published
version the API asks about (so every shard of one request reads the same version), keeps
the two most recently asked open, and answers one call at a time (Lucene through pyjnius
is not thread-safe, and an ``async`` method runs on the replica's one event loop).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from indexer import ImageRow, TwoPhase, open_published

from .index_handle import IndexHandle, open_index
from .metrics import Metrics
from .query import Target
from .ranked import RankedDoc

KEPT_VERSIONS = 2  # the current version and the one requests in flight may still use


class ShardSearcher:
    """Search shard ``shard`` of the index at ``root``, by version."""

    def __init__(self, root: str, shard: int) -> None:
        self.root = Path(root)
        self.shard = shard
        self.metrics = Metrics()  # this replica's own stage timings
        self._open: OrderedDict[str, IndexHandle] = OrderedDict()
        self._handle(open_published(self.root).version)  # a missing shard fails the start

    def _handle(self, version: str) -> IndexHandle:
        if version in self._open:
            self._open.move_to_end(version)
        else:
            self._open[version] = open_index(self.root, version, self.shard)
            while len(self._open) > KEPT_VERSIONS:
                self._open.popitem(last=False)[1].retire()
        return self._open[version]

    async def search(
        self,
        version: str,
        target: Target,
        terms: dict[str, int],
        k: int,
        plan: TwoPhase | None = None,
    ) -> list[RankedDoc]:
        """This shard's top ``k`` of ``target`` in ``version``, with their rows."""
        return self._handle(version).search(target, terms, k, self.metrics, plan)

    async def images(self, version: str, ids: Sequence[str]) -> list[ImageRow]:
        """Rows of the images of this shard among ``ids``, in order."""
        return self._handle(version).images(ids)
