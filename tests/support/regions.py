"""One emulator per SSO region, chosen the way botocore chooses every endpoint: ``region_endpoints(...)``.

``AWS_ENDPOINT_URL_SSO_OIDC`` and ``AWS_ENDPOINT_URL_SSO`` send every region to one URL. To give
two SSO sessions two services, each session gets its own ``sso_region`` and botocore its own
endpoint rules for sso-oidc and the portal: ``AWS_DATA_PATH`` names extra data directories that
botocore reads before its own, and an ``endpoint-rule-set-1.json`` there maps each region to its
emulator (an explicit endpoint URL still wins, as in botocore's own rules). ssocred's code path is
the production one: only the data botocore resolves endpoints from differs.
"""

from __future__ import annotations

import json
from pathlib import Path

#: Services whose endpoints ``region_endpoints`` sets, with their API versions in botocore's data.
SERVICES = {"sso-oidc": "2019-06-10", "sso": "2019-06-10"}

_PARAMETERS = {
    "Region": {"builtIn": "AWS::Region", "required": False, "type": "string"},
    "UseDualStack": {"builtIn": "AWS::UseDualStack", "required": True, "default": False, "type": "boolean"},
    "UseFIPS": {"builtIn": "AWS::UseFIPS", "required": True, "default": False, "type": "boolean"},
    "Endpoint": {"builtIn": "SDK::Endpoint", "required": False, "type": "string"},
}


def _endpoint(url: object) -> dict[str, object]:
    return {"conditions": [], "endpoint": {"url": url, "properties": {}, "headers": {}}, "type": "endpoint"}


def ruleset(urls: dict[str, str]) -> dict[str, object]:
    """Endpoint rules sending region ``r`` to ``urls[r]``: ``ruleset({"us-east-1": "http://127.0.0.1:8080"})``."""
    rules: list[dict[str, object]] = [
        {"conditions": [{"fn": "isSet", "argv": [{"ref": "Endpoint"}]}], "type": "tree",
         "rules": [_endpoint({"ref": "Endpoint"})]},
    ]
    for region, url in urls.items():
        rules.append({"conditions": [{"fn": "isSet", "argv": [{"ref": "Region"}]},
                                     {"fn": "stringEquals", "argv": [{"ref": "Region"}, region]}],
                      "type": "tree", "rules": [_endpoint(url)]})
    rules.append({"conditions": [], "error": "no emulator for this region", "type": "error"})
    return {"version": "1.0", "parameters": _PARAMETERS, "rules": rules}


def region_endpoints(directory: Path, urls: dict[str, str]) -> dict[str, str]:
    """Write the rules into ``directory``; the environment that makes botocore use them.

    Example: ``env = region_endpoints(tmp_path / "data", {"us-east-1": fast.url, "eu-west-1": slow.url})``
    """
    for service, version in SERVICES.items():
        path = directory / service / version / "endpoint-rule-set-1.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ruleset(urls)))
    return {"AWS_DATA_PATH": str(directory)}
