"""An OCI image archive (what BuildKit writes with ``--output type=oci``): its manifest and blobs.

The package job builds the model image into an archive with no registry credentials at all; the
publish job pushes it to ECR through ECR's own API (``mlops image release``). Read with the
standard library: the OCI image layout is a tar of ``index.json`` and content-addressed blobs.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from mlops_cli.errors import CliError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


@dataclass(frozen=True)
class OciImage:
    path: Path
    manifest: bytes
    media_type: str
    blobs: tuple[Blob, ...]  # the config first, then the layers

    @property
    def digest(self) -> str:
        """The manifest's digest: what ECR names the image by (the same bytes, the same digest)."""
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()

    def read_blob(self, digest: str) -> bytes:
        with tarfile.open(self.path) as archive:
            return _member(archive, _blob_path(digest))


def _blob_path(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        raise CliError(f"unsupported blob digest {digest!r} in the image archive")
    return f"blobs/sha256/{value}"


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    for candidate in (name, f"./{name}"):
        try:
            member = archive.getmember(candidate)
        except KeyError:
            continue
        extracted = archive.extractfile(member)
        if extracted is not None:
            return extracted.read()
    raise CliError(f"{name} is missing from the image archive")


def read_archive(path: Path) -> OciImage:
    """The single image of an OCI archive, its manifest checked against its digest."""
    if not path.is_file():
        raise CliError(f"image archive {path} does not exist (did the package job build it?)")
    try:
        with tarfile.open(path) as archive:
            index = json.loads(_member(archive, "index.json"))
            manifests = index.get("manifests") or []
            if len(manifests) != 1:
                raise CliError(f"{path} holds {len(manifests)} images; build exactly one")
            descriptor = manifests[0]
            manifest = _member(archive, _blob_path(descriptor["digest"]))
    except (tarfile.TarError, ValueError, KeyError) as exc:
        raise CliError(f"{path} is not an OCI image archive: {exc}") from None
    if "sha256:" + hashlib.sha256(manifest).hexdigest() != descriptor["digest"]:
        raise CliError(f"{path}: the manifest does not match its digest")
    document = json.loads(manifest)
    media_type = document.get("mediaType") or descriptor.get("mediaType") or OCI_MANIFEST
    if media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise CliError(f"{path}: {media_type} is not a single-platform image manifest")
    blobs = [document["config"], *document.get("layers", [])]
    return OciImage(path, manifest, media_type, tuple(Blob(b["digest"], int(b["size"])) for b in blobs))
