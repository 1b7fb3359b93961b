"""``python -m certwarden.cli``: the same as the ``certwarden`` script."""

import sys

from certwarden.cli import main

sys.exit(main())
