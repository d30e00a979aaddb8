"""A local AWS IAM Identity Center emulator: sso-oidc, the SSO portal and STS (GetCallerIdentity, AssumeRole).

One threaded HTTP server on 127.0.0.1 serves, on one port:

- sso-oidc: ``POST /client/register``, ``POST /device_authorization``, ``POST /token``
  (device-code, PKCE authorization-code and rotating refresh-token grants), ``GET /authorize``;
- the SSO portal: ``GET /federation/credentials``, ``GET /assignment/accounts``,
  ``GET /assignment/roles``, ``POST /logout``;
- STS: ``POST /`` with ``Action=GetCallerIdentity`` or ``Action=AssumeRole`` (query protocol, XML
  answers and XML errors; any SigV4 signature, but the key must be one the portal or AssumeRole
  issued and not expired); AssumeRole checks the RoleArn, RoleSessionName and DurationSeconds as STS
  does (at most 3600: every issued key is a role session, so each AssumeRole is role chaining), and
  refuses the ARNs in the ``deny_assume_role`` setting with AccessDenied;
- browser pages: ``/authorize`` (Allow/Deny with ``--manual-approve``) and ``/device``;
- control: ``GET /_stats``, ``POST /_reset``, ``POST /_control``, ``POST /_revoke``.

Counters (``GET /_stats``): ``operations`` counts every request received per operation, injected
faults included (``Authorize`` counts ``GET /authorize``); ``create_token`` counts successful
token issues per grant; ``redirect_uris`` lists the redirect_uri of the last 100 accepted
``/authorize`` requests. Faults (``--fail-rate``, ``--throttle-rate``) and ``--latency-ms`` apply
to API requests only, never to browser pages or control endpoints, and are decided before any
state changes.

Point AWS SDKs at it with ``AWS_ENDPOINT_URL_SSO_OIDC``, ``AWS_ENDPOINT_URL_SSO`` and
``AWS_ENDPOINT_URL_STS`` set to its URL. Run it with ``python -m ssocred.emulator --help``, or
in-process with :class:`Emulator`.

Directory file (``--directory FILE``)::

    {
      "user": "alice@example.com",
      "accounts": [
        {"accountId": "111122223333", "accountName": "Development",
         "emailAddress": "dev@example.com", "roles": ["AdministratorAccess", "ReadOnlyAccess"]},
        {"accountName": "Production", "roles": ["ReadOnlyAccess"]}
      ]
    }

``user`` (optional) is the role session name in STS ARNs; per account only ``accountName`` and
``roles`` are required.
"""

from ssocred.emulator.directory import Account, Directory
from ssocred.emulator.server import Emulator
from ssocred.emulator.settings import Settings

__all__ = ["Account", "Directory", "Emulator", "Settings"]
