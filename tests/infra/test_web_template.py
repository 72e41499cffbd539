"""infra/web.yaml: the renter web app's bucket stays private and is read only by its CloudFront
distribution through Origin Access Control; cfn-lint is clean (also in `make lint`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.infra.conftest import ROOT

TEMPLATE = ROOT / "infra" / "web.yaml"


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tag)


def _resources() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)["Resources"]


def test_bucket_blocks_public_access_and_is_read_through_oac_only():
    res = _resources()
    bucket = res["WebBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert "WebsiteConfiguration" not in bucket  # no public website endpoint
    oac = res["WebOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert oac["OriginAccessControlOriginType"] == "s3" and oac["SigningBehavior"] == "always"
    dist = res["WebDistribution"]["Properties"]["DistributionConfig"]
    (origin,) = dist["Origins"]
    assert origin["OriginAccessControlId"] == {"GetAtt": "WebOriginAccessControl.Id"}
    assert dist["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert dist["DefaultCacheBehavior"]["AllowedMethods"] == ["GET", "HEAD"]
    allow = [s for s in res["WebBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow == [allow[0]] and allow[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow[0]["Action"] == "s3:GetObject"
    assert "WebDistribution" in str(allow[0]["Condition"]["StringEquals"]["AWS:SourceArn"])


def test_cfn_lint_is_clean():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    proc = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
