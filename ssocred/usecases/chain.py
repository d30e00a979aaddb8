"""Credentials for any profile ssocred serves: an SSO role, or a role chained from one with STS AssumeRole.

``target_for`` turns a request (a profile name, or an SSO role named in full) into its target, and
``credentials_for`` gives the target's credentials: every front end goes through both. Chained credentials are cached in
the keyring like role credentials, under the chain's key (``ssocred.model.chain``), and fetched by
one process at a time under that key's lock; the item keeps the chain and the STS endpoint, so the
daemon can fetch them again before they expire.

Example: ``credentials_for(Store(), target_for(Request(profile="deploy"))[0]).account_id == "222233334444"``
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ssocred.errors import ServiceError, StoreError, UsageError
from ssocred.model.chain import Chain, Target, chain_from_dict, chain_to_dict, is_chained, target_key
from ssocred.model.config import SsoTarget
from ssocred.usecases import credentials
from ssocred.usecases.credentials import Clock, Role

if TYPE_CHECKING:
    from pathlib import Path

    from ssocred.adapters.store import Store
    from ssocred.model.sso import RoleCredentials
    from ssocred.process_args import Request


def target_for(request: Request, config_path: Path | None = None) -> tuple[Target, bool]:
    """What ``request`` asks for, and whether a required login may run on the terminal.

    A login may run with ``--login``, or when the profile opts in with ``ssocred_login = true``;
    ``config_path`` replaces ``$AWS_CONFIG_FILE`` (the daemon answers for the client's file).
    Example: ``target_for(Request(profile="deploy"))[0].last.role_arn``
    """
    named = request.named()
    if named is not None:
        return SsoTarget(*named), request.login
    if request.profile is None:
        raise UsageError("ssocred process needs --profile, or --sso-session, --account-id and --role-name",
                         fix="see: ssocred process --help")
    from ssocred.adapters import config_file
    from ssocred.model.chain import resolve

    cfg = config_file.load(config_path)
    target = resolve(cfg, request.profile)
    opted_in = cfg.profile(request.profile).values.get("ssocred_login", "").lower() in ("true", "yes", "1")
    return target, request.login or opted_in


def credentials_for(store: Store, target: Target, *, config_path: Path | None = None,
                    clock: Clock = time.time) -> RoleCredentials:
    """Fresh credentials for ``target``: the cache, else one fetch across all processes.

    Example: ``credentials_for(store, SsoTarget("corp", "111122223333", "Dev")).role_name == "Dev"``
    """
    chain = target if isinstance(target, Chain) else None
    return credentials.role_credentials(
        store, *target_key(target), clock=clock,
        fetch_with=None if chain is None else lambda: fetch(store, chain, config_path=config_path, clock=clock))


def fetch(store: Store, chain: Chain, *, force: bool = False, requested: bool = True,
          config_path: Path | None = None, endpoint: str | None = None, clock: Clock = time.time) -> RoleCredentials:
    """AssumeRole under the chain's lock; a caller that finds fresh credentials after the wait uses them.

    ``endpoint`` fixes the STS endpoint (the daemon's re-fetch uses the one the first fetch used).
    Example: ``fetch(store, chain, force=True).expiration > time.time()``
    """
    from ssocred.adapters import locks

    key = chain.key()
    with locks.held(store.role_lock(*key), f"role {chain.last.role_arn}"):
        if not force:
            hit = credentials.cached(store, *key, clock=clock)
            if hit is not None:
                return hit
        creds, used = _assume(store, chain, config_path, endpoint, clock)
        extra: dict[str, Any] = {"chain": chain_to_dict(chain), "endpoint": used}
        try:
            store.save_creds(*key, creds, requested=requested, extra=extra)
        except StoreError:
            pass  # the cache is a convenience: a keyring that refuses it must not cost the caller its answer
        return creds


def _assume(store: Store, chain: Chain, config_path: Path | None, endpoint: str | None,
            clock: Clock) -> tuple[RoleCredentials, str]:
    """The last step, signed with the parent's credentials; once more with fresh ones if STS refuses those."""
    from ssocred.adapters import sts

    config_file = str(config_path) if config_path is not None else None
    source = credentials_for(store, chain.parent(), config_path=config_path, clock=clock)
    try:
        return sts.assume_role(source, chain.last, endpoint_url=endpoint, config_file=config_file)
    except sts.SourceRejected:
        pass  # cached source credentials STS no longer takes (revoked, or a clock that is off): fetch new ones
    source = _refetch_target(store, chain.parent(), config_path, clock)
    try:
        return sts.assume_role(source, chain.last, endpoint_url=endpoint, config_file=config_file)
    except sts.SourceRejected as exc:
        raise ServiceError(f"STS refused the credentials of the source role for {chain.last.role_arn} ({exc})",
                           fix="run: ssocred doctor --profile " + chain.last.profile) from None


def _refetch_target(store: Store, target: Target, config_path: Path | None, clock: Clock) -> RoleCredentials:
    if isinstance(target, Chain):
        return fetch(store, target, force=True, config_path=config_path, clock=clock)
    return credentials.fetch(store, *target_key(target), force=True, clock=clock)


def refetch(store: Store, key: Role, *, requested: bool = False, clock: Clock = time.time) -> RoleCredentials:
    """Fetch the credentials cached under ``key`` again, whichever kind (the daemon's pre-fetch).

    A chain is read back from its cached item. Example: ``refetch(store, ("corp", "2222…", "Deploy~3f2a…"))``
    """
    if not is_chained(key):
        return credentials.fetch(store, *key, force=True, requested=requested, clock=clock)
    extra = store.load_creds_extra(*key)
    try:
        chain = chain_from_dict(extra["chain"]) if extra is not None else None
    except (KeyError, TypeError, ValueError):
        chain = None
    if chain is None or chain.key() != key:
        raise StoreError(f"the cached credentials of {key[2]} in {key[1]} do not say how they were made",
                         fix="use the profile once more (ssocred env --profile NAME) to fetch them again")
    endpoint = extra.get("endpoint") if extra is not None else None
    return fetch(store, chain, force=True, requested=requested, clock=clock,
                 endpoint=endpoint if isinstance(endpoint, str) else None)
