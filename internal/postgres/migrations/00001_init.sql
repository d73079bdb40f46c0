-- +goose Up
CREATE TABLE daily_prices (
    code       TEXT        NOT NULL,
    trade_date DATE        NOT NULL,
    open       BIGINT      NOT NULL,
    high       BIGINT      NOT NULL,
    low        BIGINT      NOT NULL,
    close      BIGINT      NOT NULL,
    volume     BIGINT      NOT NULL,
    value      BIGINT      NOT NULL,
    source     TEXT        NOT NULL DEFAULT '',
    fetched_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (code, trade_date)
);

-- The daily job and verify read one day across all codes.
CREATE INDEX daily_prices_trade_date ON daily_prices (trade_date);

CREATE TABLE rejected_bars (
    id         BIGSERIAL   PRIMARY KEY,
    run_id     BIGINT,
    code       TEXT        NOT NULL,
    trade_date DATE,
    reason     TEXT        NOT NULL,
    payload    JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX rejected_bars_trade_date ON rejected_bars (trade_date);

CREATE TABLE ingestion_runs (
    id          BIGSERIAL   PRIMARY KEY,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    window_from DATE        NOT NULL,
    window_to   DATE        NOT NULL,
    path        TEXT        NOT NULL DEFAULT '',
    status      TEXT        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    universe    INTEGER     NOT NULL DEFAULT 0,
    fetched     INTEGER     NOT NULL DEFAULT 0,
    written     INTEGER     NOT NULL DEFAULT 0,
    unchanged   INTEGER     NOT NULL DEFAULT 0,
    rejected    INTEGER     NOT NULL DEFAULT 0,
    failed      INTEGER     NOT NULL DEFAULT 0,
    requests    BIGINT      NOT NULL DEFAULT 0,
    elapsed_ms  BIGINT      NOT NULL DEFAULT 0,
    error       TEXT        NOT NULL DEFAULT ''
);

CREATE TABLE stocks (
    code          TEXT        PRIMARY KEY,
    isin          TEXT        NOT NULL DEFAULT '',
    name          TEXT        NOT NULL DEFAULT '',
    market        TEXT        NOT NULL DEFAULT '',
    grp           TEXT        NOT NULL DEFAULT '',
    preferred     BOOLEAN     NOT NULL DEFAULT false,
    halted        BOOLEAN     NOT NULL DEFAULT false,
    listed_shares BIGINT      NOT NULL DEFAULT 0,
    listing_date  DATE,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE stocks;
DROP TABLE ingestion_runs;
DROP TABLE rejected_bars;
DROP TABLE daily_prices;
