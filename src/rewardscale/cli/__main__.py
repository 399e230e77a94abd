"""`python -m rewardscale.cli ...` is `rewardscale ...`."""

from . import main

main()
