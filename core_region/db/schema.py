"""The store's schema: numbered migrations, each with its SQL per engine where they differ
(:class:`~core_region.db.Migration`). Append only: a step, once released, never changes."""

from __future__ import annotations

from core_region.db import Migration

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        """
    CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE terms (
        key TEXT PRIMARY KEY,
        term TEXT NOT NULL,
        base_weight INTEGER NOT NULL,
        searches INTEGER NOT NULL DEFAULT 0,
        blocked INTEGER NOT NULL DEFAULT 0,
        version INTEGER NOT NULL
    );
    CREATE TABLE searches (
        id TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        q TEXT NOT NULL,
        region TEXT NOT NULL,
        version INTEGER NOT NULL,
        at REAL NOT NULL
    );
    CREATE TABLE flags (feature TEXT PRIMARY KEY, stale_ok INTEGER NOT NULL);
    INSERT INTO meta (name, value) VALUES ('version', '0');
    """,
        # PostgreSQL: 64-bit integers (SQLite's INTEGER is), REAL is 4 bytes there.
        """
    CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE terms (
        key TEXT PRIMARY KEY,
        term TEXT NOT NULL,
        base_weight BIGINT NOT NULL,
        searches BIGINT NOT NULL DEFAULT 0,
        blocked INTEGER NOT NULL DEFAULT 0,
        version BIGINT NOT NULL
    );
    CREATE TABLE searches (
        id TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        q TEXT NOT NULL,
        region TEXT NOT NULL,
        version BIGINT NOT NULL,
        at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE flags (feature TEXT PRIMARY KEY, stale_ok INTEGER NOT NULL);
    INSERT INTO meta (name, value) VALUES ('version', '0');
    """,
    ),
    Migration(
        """
    ALTER TABLE terms ADD COLUMN sources INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE term_sources (
        key TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (key, source)
    ) WITHOUT ROWID;
    CREATE TRIGGER term_sources_counted AFTER INSERT ON term_sources BEGIN
        UPDATE terms SET sources = sources + 1 WHERE key = NEW.key;
    END;
    CREATE INDEX searches_at ON searches (at);
    CREATE INDEX searches_key ON searches (key);
    -- Sources were not recorded before: a term that searches alone made served keeps being
    -- served (its sources are unknown, not zero), counted as MAX_SOURCES_COUNTED (16).
    UPDATE terms SET sources = 16 WHERE base_weight <= 0 AND searches > 0;
    """,
        """
    ALTER TABLE terms ADD COLUMN sources INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE term_sources (
        key TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (key, source)
    );
    CREATE FUNCTION term_sources_counted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE terms SET sources = sources + 1 WHERE key = NEW.key;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER term_sources_counted AFTER INSERT ON term_sources
        FOR EACH ROW EXECUTE FUNCTION term_sources_counted();
    CREATE INDEX searches_at ON searches (at);
    CREATE INDEX searches_key ON searches (key);
    UPDATE terms SET sources = 16 WHERE base_weight <= 0 AND searches > 0;
    """,
    ),
    Migration(
        """
    -- Flags become level-shaped: a level and its parameters (JSON). stale_ok stays, kept
    -- equal to level != 'strict', so a build from before levels reads the same flags.
    ALTER TABLE flags ADD COLUMN level TEXT;
    ALTER TABLE flags ADD COLUMN params TEXT NOT NULL DEFAULT '{}';
    UPDATE flags SET level = CASE stale_ok WHEN 0 THEN 'strict' ELSE 'tolerant' END;
    """
    ),
    Migration(
        """
    -- The terms a version range changed (Store.terms_since): a node catches up on a commit
    -- it did not apply without reading every term.
    CREATE INDEX terms_version ON terms (version);
    """
    ),
    Migration(
        """
    -- The core nodes using this store, each holding a lease it renews (Store.claim_node).
    CREATE TABLE core_nodes (
        node_id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        region TEXT NOT NULL,
        lease_until REAL NOT NULL
    );
    """,
        """
    CREATE TABLE core_nodes (
        node_id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        region TEXT NOT NULL,
        lease_until DOUBLE PRECISION NOT NULL
    );
    """,
    ),
    Migration(
        """
    -- The published stream, decided by the database so every core node sends the same
    -- frames (core_region/suggest/feature.py): each write's term rows as of its version
    -- (term_log), the versions that end a delta (marks), and the base snapshots (snapshots).
    CREATE TABLE term_log (
        version INTEGER NOT NULL,
        key TEXT NOT NULL,
        term TEXT NOT NULL,
        base_weight INTEGER NOT NULL,
        searches INTEGER NOT NULL,
        blocked INTEGER NOT NULL,
        sources INTEGER NOT NULL,
        PRIMARY KEY (version, key)
    );
    CREATE TABLE marks (version INTEGER PRIMARY KEY);
    CREATE TABLE snapshots (
        version INTEGER PRIMARY KEY,
        rules TEXT NOT NULL,
        data BLOB NOT NULL
    );
    -- Whether a node shares the store through a broker (a node without one is alone).
    ALTER TABLE core_nodes ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
    """,
        """
    CREATE TABLE term_log (
        version BIGINT NOT NULL,
        key TEXT NOT NULL,
        term TEXT NOT NULL,
        base_weight BIGINT NOT NULL,
        searches BIGINT NOT NULL,
        blocked INTEGER NOT NULL,
        sources INTEGER NOT NULL,
        PRIMARY KEY (version, key)
    );
    CREATE TABLE marks (version BIGINT PRIMARY KEY);
    CREATE TABLE snapshots (
        version BIGINT PRIMARY KEY,
        rules TEXT NOT NULL,
        data BYTEA NOT NULL
    );
    ALTER TABLE core_nodes ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
    """,
    ),
    Migration(
        """
    -- A term's other names (shared/names.py): display forms joined by new lines, NULL for
    -- none; kept in the term log too, which the stream is made from.
    ALTER TABLE terms ADD COLUMN names TEXT;
    ALTER TABLE term_log ADD COLUMN names TEXT;
    """
    ),
)
"""The schema, one numbered step each (the number is the position + 1)."""
