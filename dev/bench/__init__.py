"""`make bench` (`python -m local.bench`), split by what it measures: see __main__.py."""
