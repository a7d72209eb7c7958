"""``python -m blindsr_gym ...`` is the ``blindsr-gym`` command."""

import sys

from .cli import main

sys.exit(main())
