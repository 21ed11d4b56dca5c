import sys

from pcavs.cli import main

sys.exit(main())
