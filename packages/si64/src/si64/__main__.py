"""`python -m si64 ...` is `si64 ...`."""

from .cli import main

raise SystemExit(main())
