"""Entry point for ``python -m recommender``."""

import sys

from recommender.cli import main

sys.exit(main())
