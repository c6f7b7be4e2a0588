import sys

from mlops_core.cli import main

sys.exit(main())
