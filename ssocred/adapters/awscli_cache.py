"""The AWS CLI token cache (``~/.aws/sso/cache``): import a token, and the opt-in export.

Export writes the botocore token format *without* the refresh token or client secret, so the
AWS CLI and SDKs with native SSO profiles use it but never spend ssocred's refresh token.
Example: ``export_token("corp", token)`` writes ``~/.aws/sso/cache/<sha1("corp")>.json``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ssocred.adapters import paths
from ssocred.adapters.paths import display_path
from ssocred.errors import ConfigError, LoginRequired
from ssocred.model.sso import GRANT_REFRESH, Registration, Token, iso_z, parse_time

_EXPORTS = "aws-cli-exports.json"


def token_path(cache_key: str) -> Path:
    """The cache file for a session name or legacy start URL (PROTOCOL §4.1)."""
    digest = hashlib.sha1(cache_key.encode("utf-8"), usedforsecurity=False).hexdigest()
    return paths.aws_sso_cache_dir() / f"{digest}.json"


def read_token(cache_key: str, start_url: str, region: str) -> Token:
    """The token ``aws sso login`` left for ``cache_key``; LoginRequired/ConfigError when unusable."""
    path = token_path(cache_key)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LoginRequired(
            f"no AWS CLI token for '{cache_key}' in {display_path(path)}",
            fix="run: aws sso login, or log in with ssocred login",
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {display_path(path)}: {type(exc).__name__}", fix="run: aws sso login") from None
    try:
        access_token = str(data["accessToken"])
        expires_at = parse_time(str(data["expiresAt"]))
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{display_path(path)} is not a valid SSO token file", fix="run: aws sso login") from None
    reg = None
    if data.get("clientId") and data.get("clientSecret") and data.get("registrationExpiresAt"):
        try:
            reg_expiry = parse_time(str(data["registrationExpiresAt"]))
        except ValueError:
            reg_expiry = 0.0
        reg = Registration(
            client_id=str(data["clientId"]),
            client_secret=str(data["clientSecret"]),
            expires_at=reg_expiry,
            grant_types=(GRANT_REFRESH,) if data.get("refreshToken") else (),
        )
    issued = min(path.stat().st_mtime, expires_at)
    return Token(
        access_token=access_token,
        expires_at=expires_at,
        issued_at=issued,
        start_url=str(data.get("startUrl") or start_url),
        region=str(data.get("region") or region),
        refresh_token=str(data["refreshToken"]) if data.get("refreshToken") else None,
        registration=reg,
    )


def export_token(cache_key: str, token: Token) -> Path:
    """Write the botocore-format file for ``cache_key``: 0600, atomic, no refresh token."""
    path = token_path(cache_key)
    body = {
        "startUrl": token.start_url,
        "region": token.region,
        "accessToken": token.access_token,
        "expiresAt": iso_z(token.expires_at),
    }
    _write(path, json.dumps(body).encode("utf-8"))
    return path


def _write(path: Path, data: bytes) -> None:
    """``paths.atomic_write``, with a failure as one line naming the file."""
    try:
        paths.atomic_write(path, data)
    except OSError as exc:
        raise ConfigError(f"cannot write {display_path(path)} ({exc.strerror or type(exc).__name__})",
                          fix=f"check the permissions of {display_path(path.parent)}") from None


def remove_export(cache_key: str) -> bool:
    """Delete the exported file of ``cache_key`` if ssocred wrote it; True when one was removed."""
    if cache_key not in exported_sessions():
        return False
    path = token_path(cache_key)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot remove {display_path(path)} ({exc.strerror or type(exc).__name__})",
                          fix=f"check the permissions of {display_path(path.parent)}, or remove it by hand") from None
    set_export(cache_key, False)
    return True


def exported_sessions() -> set[str]:
    """Sessions whose token ssocred keeps exported (a non-secret list in the state dir)."""
    try:
        data = json.loads((paths.state_dir() / _EXPORTS).read_text(encoding="utf-8"))
        return {str(s) for s in data.get("sessions", [])}
    except (OSError, ValueError, AttributeError):
        return set()


def set_export(cache_key: str, enabled: bool) -> None:
    """Turn the export of ``cache_key`` on or off (remembered across refreshes)."""
    sessions = exported_sessions()
    sessions = sessions | {cache_key} if enabled else sessions - {cache_key}
    state = paths.private_dir(paths.state_dir())
    _write(state / _EXPORTS, json.dumps({"sessions": sorted(sessions)}).encode())


def after_refresh(cache_key: str, token: Token) -> None:
    """Re-export a refreshed token when its session is exported."""
    if cache_key in exported_sessions():
        export_token(cache_key, token)



