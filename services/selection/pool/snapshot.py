"""The pool of a year as content-addressed buckets (draw algorithm v2), kept current incrementally.

- `pool_bucket` (year, prefix) → hash of the bucket's canonical JSON: the current state.
- `pool_blob` hash → the canonical JSON text itself, stored once (every version a receipt names).
- `pool_change` (prefix, year or NULL for every year): written by triggers on `supervisor` and
  `booking` in the writer's own transaction (migration 0002), consumed by the next draw.

`refresh` runs as ONE statement, so it sees one consistent state: it deletes the change rows
committed so far and rebuilds exactly their buckets (and every bucket of a year drawn for the first
time). A change committed while it runs keeps its change row and is rebuilt by the next draw. Callers
hold the chain lock, so two refreshes never run at once.

Bucket JSON is rendered by PostgreSQL in the canonical form of `algorithm.canonical` (RFC 8785: keys
sorted, no spaces; to_json escapes exactly what JCS escapes); a test holds
the two byte-identical for awkward text. Parsed buckets are cached in this process by hash, as rows
and as `algorithm.Columns` (what the fast strict draw reads): a hash names its content, so the cache
can never be stale, whatever database or replica it came from.
"""

import json
from collections import OrderedDict
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from services.selection.draw import algorithm
from shared.db import raw

EMPTY_BUCKET_HASH = algorithm.H([])
CACHE_BUCKETS = 8192  # ~2 years of a 20 000-person pool plus the versions changed since

# $1 year of the draw, $2 the first year kept: older years are dropped (no longer maintained, so a
# draw for one would build it again from nothing rather than use a stale bucket).
REFRESH_SQL = """
WITH changed AS (
    DELETE FROM selection.pool_change RETURNING prefix, year
), dropped AS (
    DELETE FROM selection.pool_bucket WHERE year < $2::int
), new_year AS (
    SELECT $1::int AS year, lpad(to_hex(g), 2, '0') AS prefix FROM generate_series(0, 255) g
    WHERE NOT EXISTS (SELECT 1 FROM selection.pool_bucket WHERE year = $1::int)
), targets AS (
    SELECT DISTINCT b.year, b.prefix FROM selection.pool_bucket b
    JOIN changed c ON c.prefix = b.prefix AND (c.year IS NULL OR c.year = b.year)
    WHERE b.year >= $2::int
    UNION SELECT year, prefix FROM new_year
), rebuilt AS (
    SELECT t.year, t.prefix, coalesce('[' || string_agg(
        '{"district":' || to_json(s.district)::text || ',"id":"' || s.id::text || '","served":'
        || n.served::text || ',"specialties":' || array_to_json(s.specialties)::text || '}',
        ',' ORDER BY s.id) || ']', '[]') AS body
    FROM targets t
    LEFT JOIN selection.supervisor s
      ON s.id BETWEEN (t.prefix || '000000-0000-0000-0000-000000000000')::uuid
                  AND (t.prefix || 'ffffff-ffff-ffff-ffff-ffffffffffff')::uuid
     AND s.eligible AND NOT s.dismissed
    LEFT JOIN LATERAL (SELECT count(*) AS served FROM selection.booking k
                       WHERE k.supervisor_id = s.id AND k.active AND k.year = t.year) n ON true
    GROUP BY t.year, t.prefix
), hashed AS (
    SELECT year, prefix, body, encode(sha256(convert_to(body, 'UTF8')), 'hex') AS hash FROM rebuilt
), blobs AS (
    INSERT INTO selection.pool_blob (hash, body)
    SELECT DISTINCT ON (hash) hash, body FROM hashed WHERE body <> '[]'
    ON CONFLICT (hash) DO NOTHING
)
INSERT INTO selection.pool_bucket (year, prefix, hash)
SELECT year, prefix, hash FROM hashed
ON CONFLICT (year, prefix) DO UPDATE SET hash = excluded.hash
"""

MANIFEST_SQL = """
SELECT prefix, hash FROM selection.pool_bucket WHERE year = $1 AND hash <> $2 ORDER BY prefix
"""



class CachedBucket(NamedTuple):
    rows: list[dict]
    columns: algorithm.Columns


_cache: "OrderedDict[str, CachedBucket]" = OrderedDict()


async def refresh(session: AsyncSession, *, year: int, current_year: int) -> None:
    """Bring the buckets of `year` (and of every maintained year) up to the committed state."""
    await raw.execute(session, REFRESH_SQL, year, min(year, current_year))


async def manifest(session: AsyncSession, *, year: int) -> dict[str, str]:
    """prefix → bucket hash of the non-empty buckets of a year (call `refresh` first)."""
    rows = await raw.fetch(session, MANIFEST_SQL, year, EMPTY_BUCKET_HASH)
    return {r["prefix"]: r["hash"] for r in rows}


async def load_buckets(session: AsyncSession, hashes: list[str], *,
                       as_stored: bool = False) -> dict[str, list[dict]]:
    """hash → parsed rows, from this process's cache or from `pool_blob` (each checked against its hash).

    `as_stored`: read the store itself, unchecked and uncached — what a receipt serves, so that a
    changed blob shows up in the verifier instead of being papered over by the cache.
    """
    missing = hashes if as_stored else [h for h in hashes if h not in _cache]
    fetched: dict[str, list[dict]] = {}
    if missing:
        for r in await raw.fetch(session, "SELECT hash, body FROM selection.pool_blob WHERE hash = ANY($1::text[])",
                                 missing):
            if not as_stored and algorithm.sha256_hex(r["body"].encode("utf-8")) != r["hash"]:
                raise RuntimeError(f"pool bucket {r['hash']} does not match its hash: the store was changed")
            fetched[r["hash"]] = json.loads(r["body"])
    if not as_stored:
        for rows in fetched.values():
            # tuples of strings, so the garbage collector can stop tracking 20 000 cached rows
            # (a dict holding only such values is untracked too) instead of walking them every
            # full collection; the draw only reads them
            for row in rows:
                row["specialties"] = tuple(row["specialties"])
    if as_stored:
        return fetched
    for digest, rows in fetched.items():
        _remember(digest, rows)
    out = {}
    for h in hashes:
        cached = _cache.get(h)
        if cached is None:
            raise LookupError(f"pool bucket {h} is not stored")
        _cache.move_to_end(h)
        out[h] = cached.rows
    return out


def columns_of(hashes: list[str]) -> dict[str, algorithm.Columns]:
    """hash → the bucket as Columns, for buckets `load_buckets` has just returned (they are cached)."""
    return {h: _cache[h].columns for h in hashes}


def _remember(digest: str, rows: list[dict[str, Any]]) -> None:
    _cache[digest] = CachedBucket(rows, algorithm.Columns.of_rows(rows))
    _cache.move_to_end(digest)
    while len(_cache) > CACHE_BUCKETS:
        _cache.popitem(last=False)


class Pool(NamedTuple):
    snapshot: dict  # the manifest the receipt names
    buckets: dict[str, list[dict]]  # hash → rows
    columns: dict[str, algorithm.Columns]  # hash → the same rows as columns


async def snapshot_for(session: AsyncSession, *, year: int, current_year: int, chain_head: str) -> Pool:
    """A year's pool as committed now, bound to the chain's head; callers hold the chain lock."""
    await refresh(session, year=year, current_year=current_year)
    buckets = await manifest(session, year=year)
    hashes = sorted(set(buckets.values()))
    rows = await load_buckets(session, hashes)
    return Pool({"chain_head": chain_head, "year": year, "buckets": buckets}, rows, columns_of(hashes))


async def frozen(session: AsyncSession, snapshot: dict) -> Pool:
    """The pool a stored snapshot manifest names (frozen at acceptance): its buckets from the store."""
    hashes = sorted(set(snapshot["buckets"].values()))
    rows = await load_buckets(session, hashes)
    return Pool(snapshot, rows, columns_of(hashes))
