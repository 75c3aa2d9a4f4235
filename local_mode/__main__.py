"""``python -m local_mode demo [--model P/M] [--model-repo PATH] [--fail] [--keep-running] ...`` (--help)"""

import sys

from local_mode.demo import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["demo"]:
        args = args[1:]
    sys.exit(main(args))
