import sys

from autoclint.cli import main

sys.exit(main())
