"""``mlops image release``: push the built image to ECR under the next free release version.

Safe when two pipelines of one model release at once, and when a job is re-run:
- the image's digest already carries a release tag (this image was released before, e.g. the job
  is re-run after it pushed): that version is the answer, nothing is written;
- otherwise the next version is computed from the tags in ECR and the manifest is put under it.
  Tags are immutable: if another pipeline took that version first, ECR refuses the put, the tags
  are read again and the next version after the winner's is tried.

The image goes straight to its release tag (no ``ci-<pipeline>`` tag), so the repository's
lifecycle rules never see a release image through some other tag.

Layers are uploaded with ECR's layer API (boto3): no registry login, no Docker. No library
pushes an OCI archive through that API (registry clients speak the Docker registry protocol
and need a login token), hence this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli.errors import EXIT_USAGE, CliError
from mlops_cli.oci import OciImage
from mlops_cli.versioning import VersionResult
from mlops_core.names import InvalidName, ecr_repository_name
from mlops_core.versions import Bump, next_version, released_versions

MAX_ATTEMPTS = 20  # concurrent releases of one model, each losing at most once per winner
# ECR's UploadLayerPart takes parts of at most 20 MiB.
PART_SIZE = 10 * 1024 * 1024
_TAKEN = ("ImageAlreadyExistsException", "ImageTagAlreadyExistsException")


@dataclass(frozen=True)
class Release:
    repository: str
    repository_uri: str
    version: str
    previous: str
    bump: str
    digest: str
    created: bool  # False: the image already had this version (a re-run)

    def dotenv(self) -> dict[str, str]:
        version = VersionResult(self.repository, self.repository_uri, self.version, self.previous, self.bump)
        return {**version.dotenv(), "IMAGE_DIGEST": self.digest}


def _aws_error(what: str, exc: Exception) -> CliError:
    if isinstance(exc, ClientError):
        error = exc.response["Error"]
        if error["Code"] == "RepositoryNotFoundException":
            return CliError(
                f"{what}: the ECR repository does not exist: add the model with ModelPipeline and deploy the "
                "platform before its first build"
            )
        return CliError(f"{what} failed: {error['Code']}: {error.get('Message', '')}")
    return CliError(f"{what} failed: {exc}")


def _tags(ecr, repository: str) -> list[str]:
    tags: list[str] = []
    for page in ecr.get_paginator("list_images").paginate(repositoryName=repository, filter={"tagStatus": "TAGGED"}):
        tags.extend(image["imageTag"] for image in page["imageIds"] if "imageTag" in image)
    return tags


def _release_tags_of(ecr, repository: str, digest: str) -> list[str]:
    try:
        details = ecr.describe_images(repositoryName=repository, imageIds=[{"imageDigest": digest}])["imageDetails"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ImageNotFoundException":
            return []
        raise
    tags = [tag for detail in details for tag in detail.get("imageTags", [])]
    return [str(v) for v in released_versions(tags)]


def _digest_of_tag(ecr, repository: str, tag: str) -> str | None:
    try:
        details = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ImageNotFoundException":
            return None
        raise
    return details[0]["imageDigest"] if details else None


def _upload_blobs(ecr, repository: str, image: OciImage) -> None:
    digests = [blob.digest for blob in image.blobs]
    present = ecr.batch_check_layer_availability(repositoryName=repository, layerDigests=digests)
    available = {
        layer["layerDigest"] for layer in present.get("layers", []) if layer.get("layerAvailability") == "AVAILABLE"
    }
    for blob in image.blobs:
        if blob.digest in available:
            continue
        data = image.read_blob(blob.digest)
        upload = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
        for first in range(0, len(data), PART_SIZE):
            part = data[first : first + PART_SIZE]
            ecr.upload_layer_part(
                repositoryName=repository,
                uploadId=upload,
                partFirstByte=first,
                partLastByte=first + len(part) - 1,
                layerPartBlob=part,
            )
        ecr.complete_layer_upload(repositoryName=repository, uploadId=upload, layerDigests=[blob.digest])


def release(project: str, model: str, image: OciImage, bump: Bump) -> Release:
    try:
        repository = ecr_repository_name(project, model)
    except InvalidName as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    ecr = boto3.client("ecr")
    try:
        uri = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]["repositoryUri"]
        already = _release_tags_of(ecr, repository, image.digest)
        if already:
            return Release(repository, uri, already[-1], "", bump.value, image.digest, created=False)
        _upload_blobs(ecr, repository, image)
        for _ in range(MAX_ATTEMPTS):
            tags = _tags(ecr, repository)
            existing = released_versions(tags)
            version = str(next_version(tags, bump))
            try:
                ecr.put_image(
                    repositoryName=repository,
                    imageManifest=image.manifest.decode(),
                    imageManifestMediaType=image.media_type,
                    imageDigest=image.digest,  # ECR checks it against the manifest's bytes
                    imageTag=version,
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in _TAKEN:
                    raise
                if _digest_of_tag(ecr, repository, version) == image.digest:  # a concurrent re-run of this job
                    return Release(repository, uri, version, "", bump.value, image.digest, created=False)
                continue  # another pipeline released this version first: take the next one
            previous = str(existing[-1]) if existing else ""
            return Release(repository, uri, version, previous, bump.value, image.digest, created=True)
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error(f"releasing {repository}", exc) from None
    raise CliError(f"{repository}: no free version after {MAX_ATTEMPTS} attempts (too many concurrent releases)")
