-- One row every write transaction updates first. SQLite: the transaction takes the write lock
-- at once (no SQLITE_BUSY when a read upgrades). PostgreSQL: the row lock queues the writers of
-- every broker on the database, so each sees what the one before it committed.
CREATE TABLE write_lock (
    id INTEGER PRIMARY KEY NOT NULL,
    writes BIGINT NOT NULL
);
INSERT INTO write_lock (id, writes) VALUES (1, 0);
