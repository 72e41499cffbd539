"""The PynamoDB settings every model shares; `models.bind()` points them at a stage's tables."""

from __future__ import annotations


class TableMeta:
    table_name = "unbound"
    region = "us-east-1"
    host = None
    connect_timeout_seconds = 2
    read_timeout_seconds = 5
    max_retry_attempts = 2
