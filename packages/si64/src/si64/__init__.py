"""Operations tooling: the `si64` operator CLI (cli.py), its HTTP client (client.py), the live
dashboard (dashboard.py), the ledger export (export.py) and the device metrics agent (agent.py).

Outside chalicelib/: nothing here ships to Lambda. It talks to the HTTP API only.
"""
