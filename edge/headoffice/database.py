"""Head office storage engines: PostgreSQL (asyncpg) or an embedded SQLite file.

The rest of the head office writes its SQL once, in the subset both engines
share, with PostgreSQL's `$1` placeholders (SQLite reads them as `?1`). A
`Database` hands out transactions; `lock` serialises the writers of one key
(one store's events, the catalogue) so two nodes of a store pushing the same
origin at once cannot both extend its chain.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

Row = Mapping[str, Any]


class Transaction(Protocol):
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...
    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...
    async def execute(self, sql: str, *args: Any) -> None: ...
    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    async def copy_rows(self, table: str, columns: Sequence[str],
                        rows: Sequence[Sequence[Any]]) -> None: ...
    async def lock(self, key: str) -> None: ...


class Database(Protocol):
    url: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def run_script(self, script: str) -> None: ...
    def transaction(self) -> Any: ...  # an async context manager giving a Transaction


def open_database(url: str) -> Database:
    """`postgresql://…` for PostgreSQL; `sqlite:///path` or a plain path for SQLite."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url)
    path = url.removeprefix("sqlite://") if url.startswith("sqlite://") else url
    return SqliteDatabase(Path(path))


def safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


_PLACEHOLDER = re.compile(r"\$(\d+)")


class _SqliteTransaction:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        rows = await self._db.execute_fetchall(_PLACEHOLDER.sub(r"?\1", sql), args)
        return list(rows)  # type: ignore[arg-type]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def execute(self, sql: str, *args: Any) -> None:
        await self._db.execute(_PLACEHOLDER.sub(r"?\1", sql), args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._db.executemany(_PLACEHOLDER.sub(r"?\1", sql), rows)

    async def copy_rows(self, table: str, columns: Sequence[str],
                        rows: Sequence[Sequence[Any]]) -> None:
        """Many rows into `table` at once (a plain INSERT here; COPY on PostgreSQL)."""
        marks = ", ".join("?" * len(columns))
        await self._db.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    async def lock(self, key: str) -> None:
        """Nothing to do: a SQLite transaction here already excludes every other writer."""


class SqliteDatabase:
    """One file, one connection; transactions take turns (BEGIN IMMEDIATE)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite://{path}"
        self._db: aiosqlite.Connection | None = None
        self._turn = asyncio.Lock()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        for pragma in ("journal_mode = WAL", "synchronous = FULL", "busy_timeout = 5000"):
            await self._db.execute(f"PRAGMA {pragma}")

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def run_script(self, script: str) -> None:
        async with self._turn:
            await self._db.executescript(script)  # type: ignore[union-attr]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SqliteTransaction]:
        assert self._db is not None, "database not open"
        async with self._turn:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(self._db)
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")


class _PostgresTransaction:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._conn.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        return await self._conn.fetchrow(sql, *args)  # type: ignore[no-any-return]

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(sql, *args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, list(rows))

    async def copy_rows(self, table: str, columns: Sequence[str],
                        rows: Sequence[Sequence[Any]]) -> None:
        # COPY: an order of magnitude faster than INSERTs for a million rows.
        await self._conn.copy_records_to_table(table, records=rows, columns=list(columns))

    async def lock(self, key: str) -> None:
        # Released at commit or rollback; waits while another transaction holds it.
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)


class PostgresDatabase:
    """A pool of asyncpg connections to one database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: Any = None

    async def open(self) -> None:
        try:
            import asyncpg
        except ImportError:
            raise RuntimeError(
                "PostgreSQL needs the asyncpg driver: pip install 'edge[headoffice]'"
            ) from None
        self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=10)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def run_script(self, script: str) -> None:
        # Several head-office processes starting at once on an empty database would
        # collide in PostgreSQL's catalogue (CREATE TABLE IF NOT EXISTS is not atomic:
        # "duplicate key ... pg_type_typname_nsp_index"): they take turns.
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('schema', 0))")
            await conn.execute(script)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PostgresTransaction]:
        assert self._pool is not None, "database not open"
        async with self._pool.acquire() as conn, conn.transaction():
            yield _PostgresTransaction(conn)
