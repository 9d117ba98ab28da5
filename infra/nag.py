"""cdk-nag wiring: the AwsSolutions pack on the whole app, and acknowledgments with reasons.

cdk-nag 3 runs as a CDK policy-validation plugin; a finding is silenced with
`Validations.of(construct).acknowledge(...)`, one acknowledgment per finding (no prefix matching),
under the id `<pack>::<rule>[<finding>]`.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

__all__ = ["NAG_PACK", "acknowledge", "add_nag_checks"]

NAG_PACK = "AwsSolutions"


def add_nag_checks(app: cdk.App) -> None:
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, *findings: tuple[str, str]) -> None:
    """Acknowledge `(rule_or_finding, reason)` pairs on `scope` and everything below it."""
    if not findings:
        return
    cdk.Validations.of(scope).acknowledge(
        *(cdk.Acknowledgment(id=f"{NAG_PACK}::{rule}", reason=reason) for rule, reason in findings)
    )
