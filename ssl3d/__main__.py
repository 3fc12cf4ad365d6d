import sys

from ssl3d.cli.main import main

sys.exit(main())
