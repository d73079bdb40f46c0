-- +goose Up
-- Prices are integers (won, shares); dates are KST calendar days as
-- 'YYYY-MM-DD' text so they sort and compare as dates; instants are RFC 3339
-- text with the +09:00 offset.
CREATE TABLE daily_prices (
    code       TEXT    NOT NULL,
    trade_date TEXT    NOT NULL,
    open       INTEGER NOT NULL,
    high       INTEGER NOT NULL,
    low        INTEGER NOT NULL,
    close      INTEGER NOT NULL,
    volume     INTEGER NOT NULL,
    value      INTEGER NOT NULL,
    source     TEXT    NOT NULL DEFAULT '',
    fetched_at TEXT    NOT NULL,
    PRIMARY KEY (code, trade_date)
) WITHOUT ROWID;

-- The daily job and verify read one day across all codes.
CREATE INDEX daily_prices_trade_date ON daily_prices (trade_date);

CREATE TABLE rejected_bars (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     INTEGER,
    code       TEXT    NOT NULL,
    trade_date TEXT,
    reason     TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);

CREATE INDEX rejected_bars_trade_date ON rejected_bars (trade_date);

CREATE TABLE ingestion_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  TEXT    NOT NULL,
    finished_at TEXT,
    window_from TEXT    NOT NULL,
    window_to   TEXT    NOT NULL,
    path        TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    universe    INTEGER NOT NULL DEFAULT 0,
    fetched     INTEGER NOT NULL DEFAULT 0,
    written     INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    requests    INTEGER NOT NULL DEFAULT 0,
    elapsed_ms  INTEGER NOT NULL DEFAULT 0,
    error       TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE stocks (
    code          TEXT    PRIMARY KEY,
    isin          TEXT    NOT NULL DEFAULT '',
    name          TEXT    NOT NULL DEFAULT '',
    market        TEXT    NOT NULL DEFAULT '',
    grp           TEXT    NOT NULL DEFAULT '',
    preferred     INTEGER NOT NULL DEFAULT 0,
    halted        INTEGER NOT NULL DEFAULT 0,
    listed_shares INTEGER NOT NULL DEFAULT 0,
    listing_date  TEXT,
    updated_at    TEXT    NOT NULL
);

-- +goose Down
DROP TABLE stocks;
DROP TABLE ingestion_runs;
DROP TABLE rejected_bars;
DROP TABLE daily_prices;
