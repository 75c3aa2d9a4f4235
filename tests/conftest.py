from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The app and the tests import top-level packages (stacks, mlops_core, ...) from the repo root.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The CDK's built-in CloudFormation Validate plugin costs ~2.5 s per synth; cdk-nag (our own
# plugin) still runs. cfn-lint covers template validity in tests/stacks/test_cfn_lint.py.
os.environ.setdefault("CDK_VALIDATION", "false")
# jsii runs on the Node that package.json pins (24), not the machine's end-of-life Node 20.
NODE_BIN = ROOT / "node_modules" / ".bin"
if NODE_BIN.is_dir() and str(NODE_BIN) not in os.environ.get("PATH", ""):
    os.environ["PATH"] = f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
