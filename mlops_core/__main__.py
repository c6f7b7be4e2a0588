import sys

from mlops_core.commands.cli import main

sys.exit(main())
