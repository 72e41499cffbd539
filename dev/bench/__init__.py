"""`make bench` (`python -m dev.bench`), split by what it measures: see __main__.py."""
