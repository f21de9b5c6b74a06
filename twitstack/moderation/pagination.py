"""The seed's `paginate(queryset, params) -> Page`: offset pagination over any countable source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
MAX_PAGE_SIZE = 500


class PageParams(BaseModel):
    """Which page to show: 1-based page number and page size."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    page: int = Field(default=1, ge=1, le=1_000_000)
    size: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, default_size: int = 50) -> PageParams:
        """Lenient parsing of ?page=&size= from a URL: bad values fall back to defaults."""
        raw: dict[str, str | int] = {"size": default_size}
        for name in ("page", "size"):
            if name in query:
                raw[name] = query[name]
        try:
            return cls.model_validate(raw)
        except ValidationError:
            return cls(size=default_size)


class Page(BaseModel, Generic[T]):
    """One page of results plus what a pager needs."""

    items: list[T]
    total: int
    page: int
    size: int
    pages: int


class Queryset(Protocol[T_co]):
    """Anything that can count its rows and fetch a slice of them."""

    async def count(self) -> int: ...

    async def fetch(self, limit: int, offset: int) -> Sequence[T_co]: ...


async def paginate(queryset: Queryset[T], params: PageParams) -> Page[T]:
    """The page of `queryset` that `params` asks for (an empty page past the end)."""
    total = await queryset.count()
    items = list(await queryset.fetch(params.size, params.offset)) if total else []
    pages = max(1, -(-total // params.size))
    return Page[T](items=items, total=total, page=params.page, size=params.size, pages=pages)
