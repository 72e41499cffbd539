"""The PynamoDB settings every model shares; `models.bind()` points them at a stage's tables."""

from __future__ import annotations

from pynamodb.connection import TableConnection
from pynamodb.models import Model


class TableMeta:
    table_name = "unbound"
    region = "us-east-1"
    host = None
    connect_timeout_seconds = 2
    read_timeout_seconds = 5
    max_retry_attempts = 2


class SharedClientModel(Model):
    """A model whose table connection makes its calls with the process's one botocore client for
    its settings (`dynamo.connection_for`), not a client of its own: PynamoDB builds one per model
    class, ~0.2 s of CPU each on the first call of every model in every process (and Lambda
    instance), and a pool of connections each. The table connection (its key schema and indexes)
    stays the model's own."""

    @classmethod
    def _get_connection(cls) -> TableConnection:
        from .dynamo import connection_for  # dynamo imports the models

        table = super()._get_connection()
        client = connection_for(cls.Meta).client
        if table.connection._client is not client:
            table.connection._client = client
        return table
