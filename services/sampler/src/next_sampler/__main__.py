import sys

from next_sampler.cli import main

sys.exit(main())
