"""The on-disk feature cache: one SQLite file, a row per (feature key, image content hash), committed per batch.

SQLite gives what the cache needs without new dependencies: atomic commits (a killed run loses at most the
batch in flight), safe concurrent writers (file locking, WAL), and lookups by key without loading everything.
"""
from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..weights.sources import cache_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS specs (key TEXT PRIMARY KEY, spec TEXT NOT NULL, dim INTEGER NOT NULL, created REAL);
CREATE TABLE IF NOT EXISTS features (key TEXT NOT NULL, image TEXT NOT NULL, data BLOB NOT NULL,
                                     PRIMARY KEY (key, image)) WITHOUT ROWID;
"""


def default_cache_root() -> Path:
    return cache_dir() / "features"


class FeatureCache:
    """Float32 feature vectors keyed by a feature key (everything that changes the numbers) and image hash."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else default_cache_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "features.sqlite"
        self.db = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        # switching a new file to WAL takes an exclusive lock that SQLite's busy timeout does not wait for:
        # a second run opening the cache at the same moment retries instead of failing
        for attempt in range(600):
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.executescript(SCHEMA)
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or attempt == 599:
                    raise
                time.sleep(0.1)
        self.db.execute("PRAGMA synchronous=NORMAL")

    def present(self, key: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT image FROM features WHERE key=?", (key,))}

    def put(self, rows: dict[str, tuple[dict, Sequence[str], np.ndarray]]) -> None:
        """Store ``{key: (spec, image hashes, features (N, D))}`` in one transaction."""
        with self.db:  # BEGIN … COMMIT, rolled back if anything fails
            self.db.execute("BEGIN IMMEDIATE")
            for key, (spec, images, feats) in rows.items():
                feats = np.ascontiguousarray(feats, dtype=np.float32)
                self.db.execute("INSERT OR IGNORE INTO specs VALUES (?, ?, ?, ?)",
                                (key, json.dumps(spec, sort_keys=True), feats.shape[1], time.time()))
                self.db.executemany("INSERT OR REPLACE INTO features VALUES (?, ?, ?)",
                                    [(key, h, f.tobytes()) for h, f in zip(images, feats)])

    def get(self, key: str, images: Sequence[str]) -> np.ndarray:
        """Features of ``images`` in that order (a hash may repeat: identical files); every one must be present."""
        row = self.db.execute("SELECT dim FROM specs WHERE key=?", (key,)).fetchone()
        if row is None:
            raise KeyError(f"feature key {key} is not in the cache {self.path}")
        rows: dict[str, list[int]] = {}
        for i, h in enumerate(images):
            rows.setdefault(h, []).append(i)
        out = np.empty((len(images), row[0]), dtype=np.float32)
        unique, found = list(rows), 0
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            q = f"SELECT image, data FROM features WHERE key=? AND image IN ({','.join('?' * len(chunk))})"
            for h, data in self.db.execute(q, [key, *chunk]):
                out[rows[h]] = np.frombuffer(data, dtype=np.float32)
                found += 1
        if found != len(unique):
            raise KeyError(f"{len(unique) - found} images missing from cache key {key}")
        return out

    def info(self) -> list[dict]:
        rows = self.db.execute(
            "SELECT s.key, s.spec, s.dim, s.created, COUNT(f.image) FROM specs s "
            "LEFT JOIN features f ON f.key = s.key GROUP BY s.key ORDER BY s.created").fetchall()
        return [{"key": k, "spec": json.loads(spec), "dim": dim, "images": n,
                 "megabytes": round(n * dim * 4 / 1e6, 1)} for k, spec, dim, created, n in rows]

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("features.sqlite*"))

    def clear(self) -> int:
        """Delete every stored feature; returns the number of rows removed."""
        with self.db:
            n = self.db.execute("DELETE FROM features").rowcount
            self.db.execute("DELETE FROM specs")
        self.db.execute("VACUUM")
        return n
