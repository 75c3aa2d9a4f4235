"""``python -m local_aws --port 0 --state-dir DIR``: run the local AWS until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

from local_aws import scenario as scenario_module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local_aws", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--state-dir", type=Path, default=None, help="logs, url file, job work dirs")
    parser.add_argument("--scenario", default=os.environ.get("LOCAL_AWS_SCENARIO"), help="scenario JSON file")
    parser.add_argument("--url-file", type=Path, default=None, help="also write the URL here")
    parser.add_argument("--job-runner", default=None, help="module:Class (default: simulated)")
    parser.add_argument("--endpoint-runner", default=None, help="module:Class (default: simulated)")
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    parser.add_argument(
        "--no-iam",
        action="store_true",
        default=os.environ.get("LOCAL_AWS_IAM", "on") == "off",
        help="do not authorize requests against IAM and resource policies (default: enforce; LOCAL_AWS_IAM=off)",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Airflow polls Describe* every second or two: request lines would drown the state changes.
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)

    from local_aws.server import serve  # imports moto: only the server process needs it

    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="local-aws-"))
    serve(
        host=args.host,
        port=args.port,
        state_dir=state_dir,
        scenario_patch=scenario_module.load(args.scenario),
        job_runner=args.job_runner,
        endpoint_runner=args.endpoint_runner,
        url_file=args.url_file,
        enforce_iam=not args.no_iam,
    )


if __name__ == "__main__":
    main()
