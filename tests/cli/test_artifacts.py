"""`mlops artifacts fetch` against a local HTTP server speaking GitLab's job artifacts API."""

from __future__ import annotations

import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlops_cli.main import main

pytestmark = pytest.mark.integration
JOB_TOKEN = "job-token-123"  # noqa: S105 - a test value


def zip_bytes(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
    return buffer.getvalue()


class FakeGitLab:
    """GET /api/v4/projects/{id}/jobs/{job}/artifacts; checks the JOB-TOKEN/PRIVATE-TOKEN header."""

    def __init__(self):
        self.archives: dict[tuple[str, str], bytes] = {}
        self.requests: list[tuple[str, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                fake.requests.append((self.path, dict(self.headers)))
                parts = self.path.split("/")  # ['', 'api', 'v4', 'projects', id, 'jobs', job, 'artifacts']
                if self.headers.get("JOB-TOKEN") != JOB_TOKEN and self.headers.get("PRIVATE-TOKEN") != JOB_TOKEN:
                    return self._reply(401, b'{"message":"401 Unauthorized"}')
                archive = fake.archives.get((parts[4], parts[6])) if len(parts) == 8 else None
                if archive is None:
                    return self._reply(404, b'{"message":"404 Not Found"}')
                return self._reply(200, archive, "application/zip")

            def _reply(self, status, body, content_type="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.api_url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v4"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def gitlab(monkeypatch):
    fake = FakeGitLab()
    monkeypatch.setenv("CI_API_V4_URL", fake.api_url)
    monkeypatch.setenv("CI_JOB_TOKEN", JOB_TOKEN)
    monkeypatch.delenv("GITLAB_TOKEN", raising=False)
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_fetches_and_unpacks_the_upstream_jobs_artifacts(gitlab, tmp_path, capsys):
    gitlab.archives[("42", "9001")] = zip_bytes({"model/train.py": b"print(1)", "model/Dockerfile": b"FROM x"})
    out = tmp_path / "upstream"
    assert main(["artifacts", "fetch", "--project-id", "42", "--job-id", "9001", "--output", str(out)]) == 0
    assert (out / "model" / "train.py").read_bytes() == b"print(1)"
    assert (out / "model" / "Dockerfile").read_bytes() == b"FROM x"
    path, headers = gitlab.requests[-1]
    assert path == "/api/v4/projects/42/jobs/9001/artifacts" and headers["JOB-TOKEN"] == JOB_TOKEN
    assert "unpacked 2 files" in capsys.readouterr().out


def test_ids_default_to_the_variables_the_trigger_passes(gitlab, tmp_path, monkeypatch):
    gitlab.archives[("7", "8")] = zip_bytes({"a.txt": b"a"})
    monkeypatch.setenv("UPSTREAM_PROJECT_ID", "7")
    monkeypatch.setenv("UPSTREAM_JOB_ID", "8")
    monkeypatch.chdir(tmp_path)
    assert main(["artifacts", "fetch"]) == 0
    assert (tmp_path / "upstream" / "a.txt").read_text() == "a"


def test_private_token_is_preferred_when_given(gitlab, tmp_path, monkeypatch):
    gitlab.archives[("1", "2")] = zip_bytes({"a": b"a"})
    monkeypatch.setenv("GITLAB_TOKEN", JOB_TOKEN)
    monkeypatch.delenv("CI_JOB_TOKEN")
    assert main(["artifacts", "fetch", "--project-id", "1", "--job-id", "2", "--output", str(tmp_path)]) == 0
    assert gitlab.requests[-1][1]["PRIVATE-TOKEN"] == JOB_TOKEN


def test_refused_token_explains_the_allowlist(gitlab, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CI_JOB_TOKEN", "wrong")
    assert main(["artifacts", "fetch", "--project-id", "1", "--job-id", "2", "--output", str(tmp_path)]) == 1
    assert "job token allowlist" in capsys.readouterr().err


def test_missing_job_is_a_clear_error(gitlab, tmp_path, capsys):
    assert main(["artifacts", "fetch", "--project-id", "1", "--job-id", "3", "--output", str(tmp_path)]) == 1
    assert "job 3 of project 1 or its artifacts were not found" in capsys.readouterr().err


def test_no_token_is_a_usage_error(gitlab, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CI_JOB_TOKEN")
    assert main(["artifacts", "fetch", "--project-id", "1", "--job-id", "2", "--output", str(tmp_path)]) == 2
    assert "no GitLab token" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["../escape.txt", "/abs.txt", "a/../../b.txt"])
def test_archive_paths_outside_the_destination_are_refused(gitlab, tmp_path, bad, capsys):
    gitlab.archives[("1", "2")] = zip_bytes({"ok.txt": b"ok", bad: b"evil"})
    out = tmp_path / "out"
    assert main(["artifacts", "fetch", "--project-id", "1", "--job-id", "2", "--output", str(out)]) == 1
    assert "refusing unsafe path" in capsys.readouterr().err
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "b.txt").exists()


def test_symlinks_in_the_archive_are_refused(gitlab, tmp_path, capsys):
    gitlab.archives[("1", "2")] = zip_bytes({}, symlink="link")
    assert main(["artifacts", "fetch", "--project-id", "1", "--job-id", "2", "--output", str(tmp_path)]) == 1
    assert "refusing unsafe path 'link'" in capsys.readouterr().err


def test_non_numeric_ids_are_usage_errors(gitlab, tmp_path, capsys):
    assert main(["artifacts", "fetch", "--project-id", "../x", "--job-id", "2", "--output", str(tmp_path)]) == 2


def test_unreachable_gitlab_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from cli_test_support import free_port

    monkeypatch.setenv("CI_JOB_TOKEN", JOB_TOKEN)
    code = main(
        [
            "artifacts",
            "fetch",
            "--api-url",
            f"http://127.0.0.1:{free_port()}/api/v4",
            "--project-id",
            "1",
            "--job-id",
            "2",
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 1 and "cannot reach GitLab" in capsys.readouterr().err


def test_cli_runs_as_a_process_with_exit_codes(tmp_path):
    """The tool as CI runs it: a separate process, errors on stderr, non-zero exit codes."""
    import subprocess
    import sys
    from pathlib import Path

    # Importable from the checkout whether or not `pip install -e .` ran; no CI variables set.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    ok = subprocess.run(
        [sys.executable, "-m", "mlops_cli", "--help"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert ok.returncode == 0 and "Exit codes" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "mlops_cli", "artifacts", "fetch", "--project-id", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "mlops: error: --api-url is required (or set CI_API_V4_URL)"
    assert "Traceback" not in bad.stderr
