import sys

from next_tracer.cli import main

sys.exit(main())
