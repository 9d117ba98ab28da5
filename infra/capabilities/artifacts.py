"""The artifact bucket (fine-tuning datasets, manifests, model output) and its access-log bucket.

Both are TLS-only, block all public access and are encrypted with S3-managed keys: the SageMaker
pipeline runs under a role this stack does not own, and SSE-S3 lets that role read the training
data with bucket-policy or IAM grants alone (no KMS key policy to keep in step). The artifact
bucket is versioned (a run's training data must not silently change under it) and logs every
request to the log bucket. Staged exports expire after `STAGING_EXPIRY_DAYS`; each retraining run
copies its dataset under `retraining/<execution>/`, which is kept.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import GatewayConfig
from infra.nag import acknowledge

__all__ = ["RETRAINING_PREFIX", "STAGING_EXPIRY_DAYS", "STAGING_PREFIX", "ArtifactBuckets"]

STAGING_PREFIX = "staging/"
RETRAINING_PREFIX = "retraining/"
STAGING_EXPIRY_DAYS = 30
_NONCURRENT_EXPIRY_DAYS = 90


class ArtifactBuckets(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        # Prod keeps its data when the stack goes; dev buckets must be emptied before a destroy.
        removal = cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY
        self.log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # the only encryption S3 server access logs support
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=removal,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(config.retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(1),
                )
            ],
        )
        acknowledge(
            self.log_bucket,
            (
                "AwsSolutions-S1",
                "This is the access-log bucket itself; logging it into itself would loop and another "
                "log bucket would only move the question.",
            ),
        )
        self.bucket = s3.Bucket(
            self,
            "Artifacts",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="artifacts/",
            removal_policy=removal,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-staged-exports",
                    prefix=STAGING_PREFIX,
                    expiration=cdk.Duration.days(STAGING_EXPIRY_DAYS),
                ),
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=cdk.Duration.days(_NONCURRENT_EXPIRY_DAYS),
                ),
            ],
        )

    def object_arn(self, key_pattern: str) -> str:
        return self.bucket.arn_for_objects(key_pattern)
