"""Prints what `make synth` produced: one line per environment stack with its resource count."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(outdir: str) -> None:
    root = Path(outdir)
    manifest = json.loads((root / "manifest.json").read_text())
    print(f'Synthesized to {root}/ (deploy one environment with: npx cdk deploy "dev/*")')
    for artifact in (manifest["artifacts"][name] for name in sorted(manifest["artifacts"])):
        if artifact["type"] != "cdk:cloud-assembly":
            continue
        nested = root / artifact["properties"]["directoryName"]
        stage = json.loads((nested / "manifest.json").read_text())
        for stack_id, stack in sorted(stage["artifacts"].items()):
            if stack["type"] != "aws:cloudformation:stack":
                continue
            template = json.loads((nested / stack["properties"]["templateFile"]).read_text())
            env = stack["environment"].removeprefix("aws://")
            print(
                f"  {stack['displayName']:<40} {stack['properties'].get('stackName', stack_id):<36} "
                f"{env:<26} {len(template['Resources']):>4} resources"
            )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cdk.out")
