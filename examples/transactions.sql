CREATE TABLE IF NOT EXISTS transactions
(
    event_id    UUID,
    user_id     UInt64,
    amount      Decimal(12, 2),
    region      String,
    event_type  Enum8('purchase' = 1, 'refund' = 2, 'view' = 3, 'add_to_cart' = 4, 'checkout' = 5, 'login' = 6),
    event_time  DateTime('UTC'),
    ingest_time DateTime('UTC'),
    _partition  Int32,
    _offset     Int64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (region, event_time, event_id)
