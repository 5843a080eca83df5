import sys

from cornerstore_consumers.cli import main

sys.exit(main())
