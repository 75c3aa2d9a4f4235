"""``python -m mlops_runtime train|evaluate|serve|monitor`` (the image also has ``train``, ``evaluate``,
``serve`` and ``monitor`` commands on its PATH, which is how SageMaker starts it)."""

import sys

USAGE = "usage: python -m mlops_runtime {train,evaluate,serve,monitor}"


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    sys.argv = [command, *sys.argv[2:]]
    if command == "train":
        from mlops_runtime.train import main as run
    elif command == "evaluate":
        from mlops_runtime.evaluate import main as run
    elif command == "serve":
        from mlops_runtime.serve import main as run
    elif command == "monitor":
        from mlops_runtime.monitor import main as run
    else:
        sys.exit(USAGE)
    run()


if __name__ == "__main__":
    main()
