import sys

from next_common.process import die_with_named_parent
from next_sampler.cli import main

die_with_named_parent()  # started by the controller (``child_env``): not to outlive it
sys.exit(main())
