import sys

from next_trainer.cli import main

sys.exit(main())
