"""Custom runners plugged into the server with --job-runner/--endpoint-runner (the issue-6 seam)."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from local_aws.sagemaker.runners import Deployment, JobOutcome, RunnerContext, RunnerFailure


class CountingJobRunner:
    """Training 'learns' the number of input rows; hyperparameter explode=yes crashes the algorithm."""

    def run_training(self, ctx: RunnerContext) -> JobOutcome:
        if ctx.description["HyperParameters"].get("explode") == "yes":
            raise RunnerFailure("AlgorithmError: exploded on purpose")
        channel = ctx.description["InputDataConfig"][0]
        files = ctx.download_prefix(channel["DataSource"]["S3DataSource"]["S3Uri"], ctx.work_dir / "train")
        rows = sum(len(f.read_text().splitlines()) for f in files)
        model = json.dumps({"rows": rows}).encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            info = tarfile.TarInfo("model.json")
            info.size = len(model)
            archive.addfile(info, io.BytesIO(model))
        ctx.put_bytes(ctx.model_artifacts_uri, buffer.getvalue())
        ctx.log(f"trained on {rows} rows")
        return JobOutcome()

    def run_processing(self, ctx: RunnerContext) -> JobOutcome:
        return JobOutcome()


class EnvEchoEndpointRunner:
    """Serves the model's environment on POST /invocations; refuses images tagged :broken. The
    environment may set ECHO_STATUS (the HTTP status it answers with) and ECHO_DELAY_MS."""

    def start(self, ctx: RunnerContext) -> Deployment:
        container = ctx.models[0]["ResolvedContainer"]
        if container["Image"].endswith(":broken"):
            raise RunnerFailure("container exited with code 1 during start-up")
        environment = container.get("Environment", {})

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(float(environment.get("ECHO_DELAY_MS", 0)) / 1000)
                body = json.dumps(environment).encode()
                self.send_response(int(environment.get("ECHO_STATUS", 200)))
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ctx.log(f"serving on port {server.server_port}")
        return Deployment(url=f"http://127.0.0.1:{server.server_port}", handle=server)

    def stop(self, deployment: Deployment) -> None:
        deployment.handle.shutdown()
        deployment.handle.server_close()


class LeakyEndpointRunner:
    """Starts a child process and never stops it: LocalAws.stop() must still not leak it."""

    def start(self, ctx: RunnerContext) -> Deployment:
        import subprocess
        import sys

        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        (ctx.work_dir.parent / "leaky.pid").write_text(str(child.pid))
        return Deployment(url=None, handle=child)

    def stop(self, deployment: Deployment) -> None:
        return None  # the bug this runner simulates
