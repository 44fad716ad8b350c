import sys

from next_controller.cli import main

sys.exit(main())
