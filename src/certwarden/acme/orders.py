"""Orders, authorizations and challenges (RFC 8555 §7.4-7.5), and challenge validation.

An order's status is derived from its authorizations when read (all valid -> ready, any
failed -> invalid) and the transition persisted with compare-and-set, so concurrent
validations of one order's authorizations can never leave it stuck or contradictory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import ipaddress
import re
import secrets
from typing import Any

from certwarden.acme.context import AcmeCore, Authenticated, RequestContext
from certwarden.acme.model import (
    Account,
    Authorization,
    AuthzStatus,
    Challenge,
    ChallengeStatus,
    Identifier,
    IdentifierType,
    Order,
    OrderStatus,
    rfc3339,
    utcnow,
)
from certwarden.acme.problems import AcmeProblem, ProblemType, malformed
from certwarden.acme.validation import key_authorization, offered_challenges
from certwarden.acme.wire import Reply, Urls

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_FAILED_AUTHZ = {AuthzStatus.INVALID, AuthzStatus.DEACTIVATED, AuthzStatus.EXPIRED,
                 AuthzStatus.REVOKED}


def _parse_time(raw: Any, what: str) -> dt.datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise malformed(f"'{what}' must be an RFC 3339 string")
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise malformed(f"'{what}' is not an RFC 3339 date-time") from None
    if value.tzinfo is None:
        raise malformed(f"'{what}' needs a time zone")
    return value.astimezone(dt.UTC)


def check_identifier(srv: AcmeCore, raw: Any) -> tuple[Identifier, bool]:
    """One order identifier -> (normalised identifier, wildcard?) or a problem naming it.
    A wildcard keeps its ``*.`` in the identifier; its authorization is for the base name."""
    if not isinstance(raw, dict) or not isinstance(raw.get("value"), str):
        raise malformed("each identifier needs a 'type' and a string 'value'")
    kind, value = raw.get("type"), raw["value"]
    if kind == IdentifierType.IP.value:
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            raise AcmeProblem(ProblemType.MALFORMED, f"{value!r} is not an IP address",
                              identifier=raw) from None
        return Identifier(type=IdentifierType.IP, value=str(addr)), False
    if kind != IdentifierType.DNS.value:
        raise AcmeProblem(ProblemType.UNSUPPORTED_IDENTIFIER, f"identifier type {kind!r}",
                          identifier={"type": str(kind), "value": value})
    name = value.lower().rstrip(".")
    wildcard = name.startswith("*.")
    base = name[2:] if wildcard else name
    labels = base.split(".")
    if (len(base) > 253 or not all(_LABEL.match(lab) for lab in labels)
            or labels[-1].isdigit()):
        raise AcmeProblem(ProblemType.REJECTED_IDENTIFIER, f"{value!r} is not a valid DNS name",
                          identifier={"type": "dns", "value": value})
    allowed = srv.settings.allowed_domains
    if allowed and not any(base == d or base.endswith("." + d) for d in allowed):
        raise AcmeProblem(ProblemType.REJECTED_IDENTIFIER,
                          f"{value!r} is outside the domains this CA issues for",
                          identifier={"type": "dns", "value": value})
    return Identifier(type=IdentifierType.DNS, value=name), wildcard


def order_json(order: Order, urls: Urls) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": order.status.value,
        "expires": rfc3339(order.expires),
        "identifiers": [i.as_dict() for i in order.identifiers],
        "authorizations": [urls.authz(a) for a in order.authz_ids],
        "finalize": urls.finalize(order.id),
        "profile": order.profile,
    }
    if order.not_before:
        doc["notBefore"] = rfc3339(order.not_before)
    if order.not_after:
        doc["notAfter"] = rfc3339(order.not_after)
    if order.error:
        doc["error"] = dict(order.error)
    if order.cert_id:
        doc["certificate"] = urls.certificate(order.cert_id)
    if order.replaces:
        doc["replaces"] = order.replaces
    return doc


def new_order(srv: AcmeCore, auth: Authenticated, ctx: RequestContext) -> Reply:
    acct = auth.account
    assert acct is not None
    srv.order_limits.take(acct.id)
    payload = auth.msg.payload_json()
    raw_ids = payload.get("identifiers")
    if not isinstance(raw_ids, list) or not raw_ids:
        raise malformed("'identifiers' must be a non-empty list")
    if len(raw_ids) > srv.settings.max_identifiers:
        raise AcmeProblem(ProblemType.REJECTED_IDENTIFIER,
                          f"more than {srv.settings.max_identifiers} identifiers in one order")
    problems: list[AcmeProblem] = []
    idents: dict[tuple[str, str], bool] = {}
    for raw in raw_ids:
        try:
            ident, wildcard = check_identifier(srv, raw)
        except AcmeProblem as exc:
            problems.append(exc)
            continue
        idents[(ident.type.value, ident.value)] = wildcard
    if problems:
        if len(problems) == 1:
            raise problems[0]
        raise AcmeProblem(problems[0].type, f"{len(problems)} identifiers were refused",
                          subproblems=problems)
    profile = payload.get("profile", srv.settings.default_profile)
    if not isinstance(profile, str) or profile not in srv.issuer.profiles:
        raise AcmeProblem(ProblemType.BAD_PROFILE, f"unknown profile {profile!r}; this CA "
                          f"offers {', '.join(sorted(srv.issuer.profiles))}")
    not_before = _parse_time(payload.get("notBefore"), "notBefore")
    not_after = _parse_time(payload.get("notAfter"), "notAfter")
    if not_before and not_after and not_after <= not_before:
        raise malformed("'notAfter' must be after 'notBefore'")
    replaces = payload.get("replaces")
    if replaces is not None and not isinstance(replaces, str):
        raise malformed("'replaces' must be an ARI certificate identifier")

    now = utcnow()
    order_id = secrets.token_urlsafe(12)
    if replaces is not None:
        _claim_replaced(srv, acct, replaces, order_id)
    authzs = []
    expires = now + srv.settings.order_lifetime
    for (kind, value), wildcard in sorted(idents.items()):
        authz_id = secrets.token_urlsafe(12)
        ident = Identifier(type=IdentifierType(kind), value=value.removeprefix("*."))
        authzs.append(Authorization(
            id=authz_id, order_id=order_id, account_id=acct.id, identifier=ident,
            wildcard=wildcard, status=AuthzStatus.PENDING,
            expires=min(expires, now + srv.settings.authz_lifetime),
            challenges=tuple(Challenge(id=secrets.token_urlsafe(12), authz_id=authz_id,
                                       type=ctype, token=secrets.token_urlsafe(32),
                                       status=ChallengeStatus.PENDING)
                             for ctype in offered_challenges(ident, wildcard))))
    order = Order(id=order_id, account_id=acct.id, status=OrderStatus.PENDING,
                  identifiers=tuple(Identifier(type=IdentifierType(k), value=v)
                                    for (k, v) in sorted(idents)),
                  authz_ids=tuple(a.id for a in authzs), profile=profile, expires=expires,
                  created_at=now, not_before=not_before, not_after=not_after, replaces=replaces)
    srv.store.add_order(order, authzs)
    return Reply(status=201, body=order_json(order, ctx.urls), location=ctx.urls.order(order_id))


def _claim_replaced(srv: AcmeCore, acct: Account, ari_id: str, order_id: str) -> None:
    """RFC 9773 §5: ``replaces`` must name one of this account's certificates, once."""
    cert = srv.store.certificate_by(ari_id=ari_id)
    if cert is None or cert.account_id != acct.id:
        raise malformed(f"'replaces' names no certificate of this account: {ari_id!r}")
    if not srv.store.mark_replaced_if(cert.id, order_id=order_id):
        raise AcmeProblem(ProblemType.CONFLICT, "that certificate was already replaced",
                          extra={"type": "urn:ietf:params:acme:error:alreadyReplaced"})


def load_order(srv: AcmeCore, acct: Account, order_id: str) -> Order:
    order = srv.store.order(order_id)
    if order is None or order.account_id != acct.id:
        # The same answer for "absent" and "someone else's": no probing of other accounts.
        raise AcmeProblem(ProblemType.NOT_FOUND, "no such order for this account")
    return refresh_order(srv, order)


def refresh_order(srv: AcmeCore, order: Order) -> Order:
    """Bring a pending/ready order's status up to date with its authorizations and expiry."""
    if order.status not in (OrderStatus.PENDING, OrderStatus.READY):
        return order
    now = utcnow()
    new: OrderStatus | None = None
    error: dict[str, Any] | None = None
    if order.expires <= now:
        new, error = OrderStatus.INVALID, AcmeProblem(
            ProblemType.UNAUTHORIZED, "order expired before it was finalized").as_dict()
    elif order.status == OrderStatus.PENDING:
        authzs = [refresh_authz(srv, a) for a in srv.store.authzs_of_order(order.id)]
        failed = [a for a in authzs if a.status in _FAILED_AUTHZ]
        if failed:
            errs = [c.error for a in failed for c in a.challenges if c.error]
            new = OrderStatus.INVALID
            error = (dict(errs[0]) if len(errs) == 1 else AcmeProblem(
                ProblemType.UNAUTHORIZED, f"{len(failed)} authorization(s) failed",
                subproblems=[AcmeProblem.from_dict(e) for e in errs]).as_dict())
        elif authzs and all(a.status == AuthzStatus.VALID for a in authzs):
            new = OrderStatus.READY
    if new is None:
        return order
    srv.store.set_order_status_if(order.id, expect=(order.status.value,), status=new.value,
                                  error=error)
    changed = srv.store.order(order.id)
    assert changed is not None
    return changed


def refresh_authz(srv: AcmeCore, authz: Authorization) -> Authorization:
    if authz.status in (AuthzStatus.PENDING, AuthzStatus.VALID) and authz.expires <= utcnow():
        srv.store.set_authz_status_if(authz.id, expect=(authz.status.value,),
                                      status=AuthzStatus.EXPIRED.value)
        changed = srv.store.authz(authz.id)
        assert changed is not None
        return changed
    return authz


def get_order(srv: AcmeCore, auth: Authenticated, ctx: RequestContext) -> Reply:
    assert auth.account is not None
    if not auth.msg.is_post_as_get:
        raise malformed("an order is read with POST-as-GET (empty payload)")
    order = load_order(srv, auth.account, ctx.resource_id)
    headers = {"Retry-After": "1"} if order.status in (OrderStatus.PENDING,
                                                       OrderStatus.PROCESSING) else None
    return Reply(body=order_json(order, ctx.urls), headers=headers)


def list_orders(srv: AcmeCore, auth: Authenticated, ctx: RequestContext) -> Reply:
    acct = auth.account
    assert acct is not None
    if acct.id != ctx.resource_id:
        raise AcmeProblem(ProblemType.UNAUTHORIZED, "these are another account's orders")
    size = srv.settings.orders_page_size
    ids = srv.store.order_ids(acct.id, offset=ctx.page * size, limit=size + 1)
    links = ((ctx.urls.orders(acct.id, ctx.page + 1), "next"),) if len(ids) > size else ()
    return Reply(body={"orders": [ctx.urls.order(i) for i in ids[:size]]}, links=links)


def challenge_json(ch: Challenge, urls: Urls) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": ch.type.value, "url": urls.challenge(ch.id),
                           "status": ch.status.value, "token": ch.token}
    if ch.validated:
        doc["validated"] = rfc3339(ch.validated)
    if ch.error:
        doc["error"] = dict(ch.error)
    return doc


def authz_json(authz: Authorization, urls: Urls) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": authz.status.value, "expires": rfc3339(authz.expires),
        "identifier": authz.identifier.as_dict(),
        "challenges": [challenge_json(c, urls) for c in authz.challenges
                       if authz.status == AuthzStatus.PENDING or c.status != "pending"],
    }
    if authz.wildcard:
        doc["wildcard"] = True
    return doc


def _load_authz(srv: AcmeCore, acct: Account, authz_id: str) -> Authorization:
    authz = srv.store.authz(authz_id)
    if authz is None or authz.account_id != acct.id:
        raise AcmeProblem(ProblemType.NOT_FOUND, "no such authorization for this account")
    return refresh_authz(srv, authz)


def authorization(srv: AcmeCore, auth: Authenticated, ctx: RequestContext) -> Reply:
    acct = auth.account
    assert acct is not None
    authz = _load_authz(srv, acct, ctx.resource_id)
    if not auth.msg.is_post_as_get:
        payload = auth.msg.payload_json()
        if payload.get("status") != AuthzStatus.DEACTIVATED.value:
            raise malformed("an authorization can only be updated to 'deactivated'")
        srv.store.set_authz_status_if(authz.id, expect=("pending", "valid"),
                                      status=AuthzStatus.DEACTIVATED.value)
        authz = _load_authz(srv, acct, authz.id)
    headers = {"Retry-After": "1"} if authz.status == AuthzStatus.PENDING else None
    return Reply(body=authz_json(authz, ctx.urls), headers=headers,
                 links=((ctx.urls.directory(), "index"),))


def challenge(srv: AcmeCore, auth: Authenticated, ctx: RequestContext) -> Reply:
    """POST {} starts validation (asynchronously); POST-as-GET reads the challenge."""
    acct = auth.account
    assert acct is not None
    found = srv.store.challenge(ctx.resource_id)
    authz = _load_authz(srv, acct, found.authz_id) if found else None
    if found is None or authz is None:
        raise AcmeProblem(ProblemType.NOT_FOUND, "no such challenge for this account")
    ch = found
    links = ((ctx.urls.authz(authz.id), "up"),)
    if auth.msg.is_post_as_get:
        return Reply(body=challenge_json(ch, ctx.urls), links=links)
    auth.msg.payload_json()  # §7.5.1: an (empty) JSON object; its contents are ignored
    if authz.status != AuthzStatus.PENDING:
        if ch.status == ChallengeStatus.PENDING:
            raise AcmeProblem(ProblemType.MALFORMED,
                              f"the authorization is {authz.status.value}")
        return Reply(body=challenge_json(ch, ctx.urls), links=links)
    if srv.store.set_challenge_if(ch.id, expect=("pending",), status="processing"):
        key_auth = key_authorization(ch.token, acct.thumbprint)
        fut = srv.submit(lambda: run_validation(srv, authz, ch, key_auth))
        with contextlib.suppress(TimeoutError):
            fut.result(timeout=srv.settings.validation_reply_wait)
        ch = srv.store.challenge(ch.id) or dataclasses.replace(
            ch, status=ChallengeStatus.PROCESSING)
    headers = {"Retry-After": "1"} if ch.status == ChallengeStatus.PROCESSING else None
    return Reply(body=challenge_json(ch, ctx.urls), links=links, headers=headers)


def run_validation(srv: AcmeCore, authz: Authorization, ch: Challenge, key_auth: str) -> None:
    """On the validation pool: check the challenge, then record the outcome (CAS)."""
    failure: AcmeProblem | None = None
    try:
        srv.validator.validate(ch.type, authz.identifier, ch.token, key_auth)
    except AcmeProblem as problem:
        failure = problem
    except Exception as exc:  # a validator bug must fail the challenge, never leave it hanging
        failure = AcmeProblem(ProblemType.SERVER_INTERNAL, f"validation failed: {exc!r}")
    if failure is not None:
        if failure.identifier is None:
            failure.identifier = authz.identifier.as_dict()
        srv.store.set_challenge_if(ch.id, expect=("processing",), status="invalid",
                                   error=failure.as_dict())
        srv.store.set_authz_status_if(authz.id, expect=("pending",), status="invalid")
        return
    srv.store.set_challenge_if(ch.id, expect=("processing",), status="valid",
                               validated=utcnow())
    srv.store.set_authz_status_if(authz.id, expect=("pending",), status="valid")

