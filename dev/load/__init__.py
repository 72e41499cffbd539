"""`make load`: a bounded load run against a local stack of its own (python -m dev.load).

Modules: http (keep-alive client + per-operation recorder), actors (fleet, device agents,
renters), monitor (slot readings), checks (books, capacity, status codes: the verdict), __main__ (the run).
"""
