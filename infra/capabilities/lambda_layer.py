"""The shared code layer (runtime dependencies + llmops), bundled locally instead of in Docker."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.capabilities.layer_build import (
    RUNTIME_PYTHON_VERSION,
    LayerBuild,
    MissingBytecodeWarning,
    runtime_python,
    runtime_requirements,
)
from infra.config import REPO_ROOT

__all__ = ["DEFAULT_CACHE_ROOT", "EXEC_WRAPPER_PATH", "LocalLayerBundling", "SharedLayer", "shared_layer_build"]

DEFAULT_CACHE_ROOT = REPO_ROOT / ".cache" / "lambda-layer"
_SHARED_DIR = REPO_ROOT / "shared"
# The wrapper script that starts our streaming runtime loop; layers are extracted under /opt.
_EXEC_WRAPPER = _SHARED_DIR / "llmops" / "lambda_runtime" / "llmops-runtime"
EXEC_WRAPPER_PATH = f"/opt/{_EXEC_WRAPPER.name}"
# Only named because BundlingOptions requires an image; local bundling always succeeds or raises.
_UNUSED_DOCKER_IMAGE = "public.ecr.aws/sam/build-python3.12"


@jsii.implements(cdk.ILocalBundling)
class LocalLayerBundling:
    def __init__(self, build: LayerBuild) -> None:
        self._build = build

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        # jsii passes the BundlingOptions struct positionally, not as the keywords the stub declares.
        # Raise instead of returning False: False would fall back to Docker, which fails with a
        # far less helpful message on machines without it.
        self._build.build_into(Path(output_dir))
        return True


def shared_layer_build(
    *, install_requirements: bool, cache_root: Path = DEFAULT_CACHE_ROOT, bytecode: bool = True
) -> LayerBuild:
    """The shared layer's build; with `bytecode`, compiled by the runtime's Python when one is installed."""
    python = runtime_python() if bytecode else None
    if bytecode and python is None:
        warnings.warn(
            f"no Python {RUNTIME_PYTHON_VERSION} found (set LLMOPS_LAYER_PYTHON, or install it, e.g. with "
            f"pyenv): the Lambda layer ships without bytecode, so every cold start compiles its modules "
            f"from source (about a second more for the gateway)",
            MissingBytecodeWarning,
            stacklevel=2,
        )
    return LayerBuild(
        package_dir=_SHARED_DIR / "llmops",
        requirements=runtime_requirements(REPO_ROOT / "pyproject.toml", REPO_ROOT / "uv.lock"),
        cache_root=cache_root,
        install_requirements=install_requirements,
        exec_wrapper=_EXEC_WRAPPER,
        bytecode_python=python,
    )


class SharedLayer(Construct):
    """One layer for every function: functions ship only their thin handler directory."""

    def __init__(self, scope: Construct, construct_id: str, *, build: LayerBuild) -> None:
        super().__init__(scope, construct_id)
        code = lambda_.Code.from_asset(
            str(_SHARED_DIR),
            # The build's own input hash: CDK skips bundling when cdk.out already has this asset.
            asset_hash_type=cdk.AssetHashType.CUSTOM,
            asset_hash=build.input_hash(),
            bundling=cdk.BundlingOptions(
                image=cdk.DockerImage.from_registry(_UNUSED_DOCKER_IMAGE),
                local=LocalLayerBundling(build),
            ),
        )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=code,
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="llmops core package and its runtime dependencies",
        )
