"""/api/v1/device: the phone app's sign-in (a long-lived token for the device), sign-out (the
device's token revoked) and who am I (``/api/v1/me``)."""
from __future__ import annotations

from geodata.access import accounts
from geodata.access.capabilities import CAPABILITIES
from geodata.models import Official

from .core import AUTH_HEADER, ApiError, Call, Result, bearer_token, error_response, unauthorized
from .schemas.common import ErrorOut
from .schemas.device import DeviceSignInIn, DeviceTokenOut, MeOut, SignedOutOut
from .v1 import bp, registry


def me_data(session, principal) -> dict:
    """Who the caller is, for the phone: account, official, grids and capabilities."""
    official = session.get(Official, principal.official_id) if principal.official_id else None
    blocks = sorted(code for code, role in principal.actor.assignments if role == "grid_leader")
    grids = list(dict.fromkeys(g.grid_code for g in principal.grants))
    return {"account_id": principal.account_id, "login": principal.login, "display_name": principal.display_name,
            "official_id": principal.official_id, "official_name": official.name if official else None,
            "grids": grids, "blocks": blocks,
            "capabilities": [c for c in CAPABILITIES if principal.may(c)]}


@registry.op("POST", bp, "/device/sign-in", capability=None, summary="Sign a device in (the phone app): login + "
             "password → a long-lived API token for it", tag="device", body=DeviceSignInIn,
             responses={201: DeviceTokenOut, 423: ErrorOut, 429: ErrorOut})
def device_sign_in(call: Call) -> Result:
    """The same checks as the sign-in page (argon2id, backoff, lockout after five failures, every
    attempt audited). Failures are 401 ``bad_credentials`` (one answer for unknown login, wrong
    password and disabled account), 429 ``sign_in_wait`` or 423 ``account_locked``; the token lasts
    until the device signs out (``POST /api/v1/device/sign-out``) or it is revoked."""
    b: DeviceSignInIn = call.body
    res = accounts.authenticate(call.session, b.login, b.password)
    if not res.ok:
        # answered, not raised: the failure (and its count towards the lockout) must be committed
        if res.outcome == "locked":
            err = ApiError(423, "account_locked", "登录失败次数过多，账号暂时锁定，请稍后再试",
                           "too many failed sign-ins: the account is locked for a while", "password",
                           detail={"retry_at": res.retry_at.isoformat()} if res.retry_at else None)
        elif res.outcome == "wait":
            err = ApiError(429, "sign_in_wait", "请稍候再试", "wait a moment before trying again", "password",
                           headers={"Retry-After": "5"})
        else:
            err = ApiError(401, "bad_credentials", "账号或密码不正确", "wrong login or password", "password")
        return Result(err.status, None, None, raw=error_response(err))
    token = accounts.issue_token(call.session, res.principal.account_id, b.label or "phone",
                                 actor_account_id=res.principal.account_id)
    return Result(201, DeviceTokenOut, {"token": token, "me": me_data(call.session, res.principal)})


@registry.op("POST", bp, "/device/sign-out", capability=None, signed_in=True, summary="Sign this device out: revoke the token "
             "the request carries", tag="device", responses={200: SignedOutOut})
def device_sign_out(call: Call) -> Result:
    token = bearer_token()
    if token is None:
        raise unauthorized("sign_in_required", "请使用 Authorization: Bearer 令牌", "send Authorization: Bearer",
                           AUTH_HEADER)
    return Result(200, SignedOutOut, {"revoked": accounts.revoke_token_value(call.session, token)})


@registry.op("GET", bp, "/me", capability=None, signed_in=True, summary="Who am I: account, official, grids, capabilities",
             tag="device", responses={200: MeOut})
def me(call: Call) -> Result:
    return Result(200, MeOut, me_data(call.session, call.principal))
