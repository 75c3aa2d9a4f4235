"""End-to-end tests of local mode: real processes (local AWS, Airflow 3, the model template's
entry points) on 127.0.0.1. The ``e2e`` marker is registered here so ``--strict-markers`` accepts it."""

from __future__ import annotations


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "e2e: runs the whole local pipeline (real Airflow, real model processes)")
