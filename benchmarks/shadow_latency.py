"""Latency a shadow variant adds to a request on the local SageMaker runtime: two endpoints in the
same local AWS, one with a single production variant, one with the same production variant plus a
shadow variant receiving a copy of every request; requests alternate between them (same run, same
machine load) and each is timed at the client (boto3 invoke_endpoint, wall clock).

Each variant's container is a separate process answering POST /invocations at once, as a model
server would, so the measurement is the runtime's routing, copy and metrics, not a model.

    .venv/bin/python benchmarks/shadow_latency.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bench/model:1.0.0"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"


class EchoContainerRunner:
    """Endpoint runner: each variant is `shadow_latency.py --serve PORT`, a separate process."""

    def start(self, ctx):  # noqa: ANN001, ANN201 - the runner seam's protocol
        from local_aws.sagemaker.process_runners import _ping, free_port
        from local_aws.sagemaker.runners import Deployment

        port = free_port()
        child = ctx.processes.start([sys.executable, __file__, "--serve", str(port)], stdin=None)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while not _ping(url):
            if time.monotonic() > deadline:
                raise RuntimeError("echo container did not start")
            time.sleep(0.05)
        return Deployment(url=url, handle=child)

    def stop(self, deployment):  # noqa: ANN001, ANN201
        deployment.handle.stop(2)


def serve(port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - /ping
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:  # noqa: N802 - /invocations
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b'{"predictions": [1]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def percentile(values: list[float], rank: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(rank / 100 * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--serve", type=int)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    import boto3

    from local_aws import LocalAws
    from local_aws.roles import ensure_service_role

    with LocalAws(
        scenario={"endpoints": {"create_delay_seconds": 0.1}},
        endpoint_runner="shadow_latency:EchoContainerRunner",
        extra_env={"PYTHONPATH": str(Path(__file__).parent)},
    ) as aws:
        os.environ.update(aws.env)
        ensure_service_role(boto3.client("iam"), ROLE.rsplit("/", 1)[-1])
        sm, runtime = boto3.client("sagemaker"), boto3.client("sagemaker-runtime")
        for name in ("prod", "cand"):
            sm.create_model(ModelName=name, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
        variant = {"InitialInstanceCount": 1, "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}
        configs = {
            "plain": {"ProductionVariants": [{"VariantName": "Production", "ModelName": "prod", **variant}]},
            "shadowed": {
                "ProductionVariants": [{"VariantName": "Production", "ModelName": "prod", **variant}],
                "ShadowProductionVariants": [{"VariantName": "Shadow", "ModelName": "cand", **variant}],
            },
        }
        for name, config in configs.items():
            sm.create_endpoint_config(EndpointConfigName=name, **config)
            sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
        for name in configs:
            sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})

        timings: dict[str, list[float]] = {name: [] for name in configs}
        for index in range(args.requests + 100):  # the first 100 of each warm up and are not counted
            for name in configs if index % 2 else reversed(list(configs)):
                started = time.perf_counter()
                runtime.invoke_endpoint(EndpointName=name, Body=b'{"x": 1}', ContentType="application/json")
                if index >= 100:
                    timings[name].append((time.perf_counter() - started) * 1000)

    print(f"{args.requests} requests per endpoint, alternating; client wall time in ms")
    print(f"{'endpoint':24} {'p50':>8} {'p99':>8} {'mean':>8}")
    for name, values in timings.items():
        print(f"{name:24} {percentile(values, 50):8.3f} {percentile(values, 99):8.3f} {statistics.fmean(values):8.3f}")
    added_p50 = percentile(timings["shadowed"], 50) - percentile(timings["plain"], 50)
    added_p99 = percentile(timings["shadowed"], 99) - percentile(timings["plain"], 99)
    print(f"{'added by the shadow':24} {added_p50:8.3f} {added_p99:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
