"""The named indexes one service serves, each swapped to its new versions on its own.

Every index was written by the one loaded model; a request names its index (or gets
the first, the default), and a new version of one index never touches another.
"""

from __future__ import annotations

from collections.abc import Iterator

from .index_handle import IndexVersions


class UnknownIndexError(LookupError):
    """A request names an index this service does not serve (404)."""


class IndexRegistry:
    """``{name: IndexVersions}`` in the order given; the first is the default."""

    def __init__(self, indexes: list[IndexVersions]) -> None:
        self._indexes = {versions.name: versions for versions in indexes}
        self.default = indexes[0].name

    @property
    def names(self) -> list[str]:
        return list(self._indexes)

    def __iter__(self) -> Iterator[IndexVersions]:
        return iter(self._indexes.values())

    def get(self, name: str | None = None) -> IndexVersions:
        """The index ``name`` (None: the default), or :class:`UnknownIndexError`."""
        found = self._indexes.get(self.default if name is None else name)
        if found is None:
            raise UnknownIndexError(
                f"no index named {name!r}; this service serves: {', '.join(self._indexes)}"
            )
        return found

    def link_name(self, name: str) -> str | None:
        """How URLs name the index ``name``: None for the default (no parameter)."""
        return None if name == self.default else name

    def maybe_reload(self) -> None:
        """Let each index look for its newly published version (see ``IndexVersions``)."""
        for versions in self:
            versions.maybe_reload()

    def close(self) -> None:
        for versions in self:
            versions.close()
