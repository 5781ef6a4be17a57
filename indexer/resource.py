"""``with`` support for objects that hold something to release (Lucene readers, writers)."""

from __future__ import annotations

from typing import Self


class Resource:
    """``with`` support: :meth:`close` after the block, :meth:`abort` after an error."""

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
