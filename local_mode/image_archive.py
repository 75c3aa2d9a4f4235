"""A stand-in for the package job's image build where there is no container builder: an OCI image
archive (the layout BuildKit writes with ``--output type=oci``) whose one layer is the model
source. Local SageMaker runs the source, not the image (``local_aws.sagemaker.process_runners``),
so the layer only has to be a real, content-addressed layer. Like a real build, the config records
when it was built, so two builds of the same source are two images.

Standard library only: ``python3 image_archive.py SOURCE_DIR ARCHIVE`` runs in a CI job's shell.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
import time
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SKIP = {".git", ".venv", "__pycache__", ".cache", ".pytest_cache"}


def _layer(source: Path) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as layer:
        for path in sorted(source.rglob("*")):
            if SKIP & set(path.relative_to(source).parts) or not path.is_file():
                continue
            info = layer.gettarinfo(str(path), arcname=f"opt/program/{path.relative_to(source)}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with path.open("rb") as handle:
                layer.addfile(info, handle)
    return gzip.compress(raw.getvalue(), mtime=0)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_archive(source: Path, archive: Path, *, created: str | None = None) -> str:
    """Write the archive; returns the image's manifest digest."""
    layer = _layer(source)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created or time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime()) + f"{time.time_ns() % 10**9:09d}Z",
            "config": {"Entrypoint": ["/bin/sh", "-c"], "WorkingDir": "/opt/program"},
            "rootfs": {"type": "layers", "diff_ids": [_digest(gzip.decompress(layer))]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _digest(layer),
                    "size": len(layer),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": _digest(manifest), "size": len(manifest)}],
        }
    ).encode()
    entries = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": index,
        **{f"blobs/sha256/{_digest(b)[7:]}": b for b in (config, layer, manifest)},
    }
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w") as out:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return _digest(manifest)


if __name__ == "__main__":
    print(write_archive(Path(sys.argv[1]), Path(sys.argv[2])))
