"""``serve``: the SageMaker endpoint entry point, gunicorn running event-loop workers (server.py)
on port 8080.

Honours SageMaker's variables: ``SAGEMAKER_MODEL_SERVER_WORKERS`` (default: one per CPU core),
``SAGEMAKER_MODEL_SERVER_TIMEOUT`` (seconds per request, default 60) and ``SAGEMAKER_BIND_TO_PORT``
(default 8080). ``MLOPS_SERVE_HOST`` (default 0.0.0.0) lets tests bind to loopback only.
Each worker loads the model once, after the fork (no ``preload``): workers share nothing, and a
native library's thread pool is never inherited half-initialised across ``fork``.
"""

from __future__ import annotations

import os
import sys

WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
TIMEOUT_ENV = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
HOST_ENV = "MLOPS_SERVE_HOST"
DEFAULT_PORT = 8080
DEFAULT_TIMEOUT = 60
# Idle keep-alive connections stay open this long: longer than the usual 60 s of load balancers, so
# the server never closes a connection that the client is about to reuse (nginx uses 75 s too).
KEEPALIVE_SECONDS = 75


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this container may use, not the host's
    except AttributeError:
        return os.cpu_count() or 1


def _positive_int(env: dict, name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"serve: {name}={raw!r} is not an integer") from None
    if value < 1:
        raise SystemExit(f"serve: {name}={raw!r} must be at least 1")
    return value


def server_options(env: dict | None = None) -> dict:
    from mlops_runtime import server  # imports numpy: only after main() has limited its threads

    env = os.environ if env is None else env
    # The container must listen on all interfaces for SageMaker to reach it.
    host = env.get(HOST_ENV) or "0.0.0.0"  # noqa: S104
    port = _positive_int(env, PORT_ENV, DEFAULT_PORT)
    return {
        "bind": f"{host}:{port}",
        "workers": _positive_int(env, WORKERS_ENV, cpu_count()),
        "timeout": _positive_int(env, TIMEOUT_ENV, DEFAULT_TIMEOUT),
        "worker_class": "mlops_runtime.server.EventLoopWorker",
        "pre_fork": server.pre_fork,  # connection balancing between the workers (server.py)
        "child_exit": server.child_exit,
        "keepalive": KEEPALIVE_SECONDS,
        "graceful_timeout": 20,
        "errorlog": "-",
        "loglevel": "info",
        "preload_app": False,
        # gunicorn >= 24 opens a control socket in $HOME by default: one per host, so a second server
        # on the same machine (tests, local runs) would clash; SageMaker never uses it.
        "control_socket_disable": True,
        # Worker heartbeats go to a file; tmpfs avoids stalls on a container's overlay filesystem.
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,  # noqa: S108
    }


def main() -> None:
    # One math thread per worker: N workers x N BLAS/OpenMP threads would oversubscribe the cores.
    # Set before any worker imports numpy.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    from gunicorn.app.base import BaseApplication

    from mlops_runtime.paths import MLPaths

    model_dir = MLPaths.from_env().model
    if not model_dir.is_dir():
        sys.exit(f"serve: no model at {model_dir} (SageMaker extracts model.tar.gz there)")
    options = server_options()

    # gunicorn's custom-application pattern: init() is only called by its config-file Application.
    class Server(BaseApplication):  # pylint: disable=abstract-method
        def load_config(self):
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            from mlops_runtime.inference import create_app

            return create_app()

    print(
        f"serve: {options['workers']} worker(s) on {options['bind']}, timeout {options['timeout']} s",
        file=sys.stderr,
        flush=True,
    )
    Server().run()


if __name__ == "__main__":
    main()
