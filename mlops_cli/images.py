"""``mlops image promote``: give a pushed CI image its release tag without pulling or pushing layers.

The package job pushes ``ci-<pipeline id>`` (kaniko); once the version is known, the publish job
puts the same manifest under the semantic version. ECR tags are immutable, so a version that
already exists is an error, never an overwrite.
"""

from __future__ import annotations

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli.errors import EXIT_USAGE, CliError
from mlops_core.names import InvalidName, ecr_repository_name, parse_version


def promote(project: str, model: str, from_tag: str, to_tag: str) -> str:
    try:
        repository = ecr_repository_name(project, model)
        version = parse_version(to_tag)
    except InvalidName as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if version.prerelease or version.build or to_tag.startswith("v"):
        raise CliError(f"--to-tag={to_tag!r} must be a plain release version MAJOR.MINOR.PATCH", EXIT_USAGE)
    ecr = boto3.client("ecr")
    try:
        found = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": from_tag}])
        if not found["images"]:
            raise CliError(f"{repository}:{from_tag} does not exist (did the package job push it?)")
        image = found["images"][0]
        kwargs = (
            {"imageManifestMediaType": image["imageManifestMediaType"]} if image.get("imageManifestMediaType") else {}
        )
        ecr.put_image(repositoryName=repository, imageManifest=image["imageManifest"], imageTag=to_tag, **kwargs)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code in ("ImageAlreadyExistsException", "ImageTagAlreadyExistsException"):
            raise CliError(f"{repository}:{to_tag} already exists; tags are immutable, bump the version") from None
        if code == "RepositoryNotFoundException":
            raise CliError(f"ECR repository {repository!r} does not exist") from None
        raise CliError(
            f"tagging {repository}:{to_tag} failed: {code}: {exc.response['Error'].get('Message', '')}"
        ) from None
    except BotoCoreError as exc:
        raise CliError(f"tagging {repository}:{to_tag} failed: {exc}") from None
    return image["imageId"]["imageDigest"]
