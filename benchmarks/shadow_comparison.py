"""Time the shadow trial's prediction agreement (mlops_dags.agreement) over N captured pairs.

Two measurements, same data: production's and the candidate's captured answers to the same N
requests, in SageMaker's data capture format with the model template's JSON answers (a classifier:
label and probability, the model's manifest), the candidate disagreeing on about 3 % of them.

1. ``compare`` alone, records in memory: the CPU the worker spends pairing and comparing.
2. What the Deployment DAG does after the bake: list the bake window's capture files of both
   variants in a local S3 (``--records-per-file`` records a file, as SageMaker batches them), fetch
   them with the module's thread pool, and compare (``capture_objects`` + ``read_records`` +
   ``compare``). Writing the files is set-up, not timed.

    .venv/bin/python benchmarks/shadow_comparison.py [--pairs 100000] [--records-per-file 100]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "dag_assets" / "dags")]

MANIFEST = {
    "model_name": "classifier",
    "model_version": "1.0.0+r3",
    "training_data": "s3://data/example-team/classifier/",
    "trained_at": "2026-12-05T08:00:00Z",
    "source_commit": "abc1234",
}


def records(pairs: int, start: datetime, seconds: float, disagree: float, seed: int = 7):
    """(production, candidate) capture records for ``pairs`` requests spread over ``seconds``."""
    rng = random.Random(seed)  # noqa: S311 - test data
    production, candidate = [], []
    for index in range(pairs):
        when = start + timedelta(seconds=seconds * index / pairs)
        request = ",".join(f"{rng.random() * 100:.3f}" for _ in range(8)) + "\n"
        label = rng.choice(("benign", "malicious"))
        other = ("malicious" if label == "benign" else "benign") if rng.random() < disagree else label
        for answers, predicted in ((production, label), (candidate, other)):
            answer = {"predictions": [{"label": predicted, "probability": round(rng.random(), 4)}], "model": MANIFEST}
            answers.append(
                {
                    "captureData": {
                        "endpointInput": {
                            "observedContentType": "text/csv",
                            "mode": "INPUT",
                            "data": request,
                            "encoding": "CSV",
                        },
                        "endpointOutput": {
                            "observedContentType": "application/json",
                            "mode": "OUTPUT",
                            "data": json.dumps(answer, separators=(",", ":")),
                            "encoding": "JSON",
                        },
                    },
                    "eventMetadata": {"eventId": f"{index}", "inferenceTime": f"{when:%Y-%m-%dT%H:%M:%SZ}"},
                    "eventVersion": "0",
                }
            )
    return production, candidate


def put_capture_files(s3, bucket: str, endpoint: str, variant: str, captured: list[dict], per_file: int) -> int:
    """The records as capture files under SageMaker's key layout; returns the number of files."""
    from local_aws.sagemaker.data_capture import capture_key

    def put(chunk: list[dict]) -> None:
        first = datetime.strptime(chunk[0]["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        _, key = capture_key(f"s3://{bucket}/capture", endpoint, variant, first, os.urandom(8).hex())
        body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in chunk).encode()
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    chunks = [captured[i : i + per_file] for i in range(0, len(captured), per_file)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, chunks))
    return len(chunks)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--records-per-file", type=int, default=100)
    parser.add_argument("--bake-seconds", type=int, default=3600)
    args = parser.parse_args()

    from mlops_dags.agreement import capture_objects, compare, read_records

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=args.bake_seconds + 60)
    end = start + timedelta(seconds=args.bake_seconds)
    production, candidate = records(args.pairs, start, args.bake_seconds - 1, disagree=0.03)

    started = time.perf_counter()
    found = compare(production, candidate, problem_type="classification", tolerance=0.01)
    in_memory = time.perf_counter() - started
    print(f"{args.pairs} pairs; agreement {found.rate * 100:.2f} % of {found.records} records")
    print(f"compare, records in memory:            {in_memory:7.2f} s")

    import boto3

    from local_aws import LocalAws

    with LocalAws() as aws:
        os.environ.update(aws.env)
        s3 = boto3.client("s3")
        bucket, endpoint = "bench-captures", "bench-endpoint"
        s3.create_bucket(Bucket=bucket)
        files = sum(
            put_capture_files(s3, bucket, endpoint, variant, captured, args.records_per_file)
            for variant, captured in (("AllTraffic", production), ("Candidate", candidate))
        )
        del production, candidate
        started = time.perf_counter()

        def window(variant: str):
            objects = capture_objects(s3, f"s3://{bucket}/capture", endpoint, variant, start, end)
            return read_records(s3, objects, start, end)

        from_s3 = compare(window("AllTraffic"), window("Candidate"), problem_type="classification", tolerance=0.01)
        elapsed = time.perf_counter() - started
    assert from_s3 == found, (from_s3, found)
    print(f"list + fetch {files} files + compare (local S3): {elapsed:7.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
