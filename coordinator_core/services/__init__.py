"""Use cases: ingest, predict, score, checkpoint, backtest. Plain functions, no Prefect."""
