"""The on-disk feature cache: one SQLite file, a row per (feature key, image content hash), committed per batch.

SQLite gives what the cache needs without new dependencies: atomic commits (a killed run loses at most the
batch in flight), safe concurrent writers (file locking, WAL), and lookups by key without loading everything.
A file that is not a readable database (truncated, overwritten) is moved aside with a one-line warning and an
empty cache takes its place: features are recomputed, nothing else is lost.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from transferlab.files import cache_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS specs (key TEXT PRIMARY KEY, spec TEXT NOT NULL, dim INTEGER NOT NULL, created REAL);
CREATE TABLE IF NOT EXISTS features (key TEXT NOT NULL, image TEXT NOT NULL, data BLOB NOT NULL,
                                     PRIMARY KEY (key, image)) WITHOUT ROWID;
"""
# what SQLite answers for a file that is not a database or a database with damaged pages
CORRUPT = ("SQLITE_NOTADB", "SQLITE_CORRUPT")


def default_cache_root() -> Path:
    return cache_dir() / "features"


def is_corrupt(error: sqlite3.DatabaseError) -> bool:
    """True for a damaged or foreign file, False for a busy or locked one (those are retried or reported)."""
    return getattr(error, "sqlite_errorname", None) in CORRUPT


class FeatureCache:
    """Float32 feature vectors keyed by a feature key (everything that changes the numbers) and image hash."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else default_cache_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "features.sqlite"
        try:
            self._open()
        except sqlite3.DatabaseError as e:
            if not is_corrupt(e):
                raise
            self._set_aside(e)
            self._open()

    def _open(self) -> None:
        self.db = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        self._inode = self.path.stat().st_ino  # to recognise the file if another process replaces it
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

    def _set_aside(self, error: sqlite3.DatabaseError) -> str:
        """Move the unreadable file (with its -wal/-shm) to ``features.sqlite.corrupt-<time>`` and warn in one line;
        returns what became of it."""
        self.db.close()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_ino == self._inode:  # else a concurrent run has already replaced it
                os.replace(self.path, aside)
                for side in ("-wal", "-shm"):  # a stale log must not be replayed into the new file
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(f"{self.path}{side}", f"{aside}{side}")
                print(f"transferlab: warning: {self.path} is not a readable feature cache ({error}); moved it to "
                      f"{aside} and started an empty one", file=sys.stderr)
                return f"moved it to {aside}"
        return "another run has set it aside"

    @contextlib.contextmanager
    def _checked(self):
        """Damage found after opening (pages of a file whose header was fine): set the file aside, then stop the
        command with one line; running it again recomputes into the new, empty cache."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            if not is_corrupt(e):
                raise
            done = self._set_aside(e)
            self._open()
            raise RuntimeError(f"{self.path} was damaged ({e}): {done} and started an empty cache; "
                               "run the command again to recompute its features") from None

    def present(self, key: str) -> set[str]:
        with self._checked():
            return {r[0] for r in self.db.execute("SELECT image FROM features WHERE key=?", (key,))}

    def put(self, rows: dict[str, tuple[dict, Sequence[str], np.ndarray]]) -> None:
        """Store ``{key: (spec, image hashes, features (N, D))}`` in one transaction."""
        with self._checked(), self.db:  # BEGIN … COMMIT, rolled back if anything fails
            self.db.execute("BEGIN IMMEDIATE")
            for key, (spec, images, feats) in rows.items():
                feats = np.ascontiguousarray(feats, dtype=np.float32)
                self.db.execute("INSERT OR IGNORE INTO specs VALUES (?, ?, ?, ?)",
                                (key, json.dumps(spec, sort_keys=True), feats.shape[1], time.time()))
                self.db.executemany("INSERT OR REPLACE INTO features VALUES (?, ?, ?)",
                                    [(key, h, f.tobytes()) for h, f in zip(images, feats)])

    def get(self, key: str, images: Sequence[str]) -> np.ndarray:
        """Features of ``images`` in that order (a hash may repeat: identical files); every one must be present."""
        with self._checked():
            return self._get(key, images)

    def _get(self, key: str, images: Sequence[str]) -> np.ndarray:
        row = self.db.execute("SELECT dim FROM specs WHERE key=?", (key,)).fetchone()
        if row is None and not images:  # nothing asked of a key nothing was stored under (every image was bad)
            return np.empty((0, 0), dtype=np.float32)
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
        with self._checked():
            rows = self.db.execute(
                "SELECT s.key, s.spec, s.dim, s.created, COUNT(f.image) FROM specs s "
                "LEFT JOIN features f ON f.key = s.key GROUP BY s.key ORDER BY s.created").fetchall()
        return [{"key": k, "spec": json.loads(spec), "dim": dim, "images": n,
                 "megabytes": round(n * dim * 4 / 1e6, 1)} for k, spec, dim, created, n in rows]

    def close(self) -> None:
        self.db.close()

    def set_aside(self) -> list[Path]:
        """Damaged cache files moved aside earlier (``features.sqlite.corrupt-*`` and their -wal/-shm)."""
        return sorted(self.root.glob(f"{self.path.name}.corrupt-*"))

    def clear(self) -> int:
        """Delete every stored feature and the files set aside; returns the number of rows removed."""
        with self._checked(), self.db:
            n = self.db.execute("DELETE FROM features").rowcount
            self.db.execute("DELETE FROM specs")
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # VACUUM went through the log: give its space back
        for p in self.set_aside():
            p.unlink()
        return n
