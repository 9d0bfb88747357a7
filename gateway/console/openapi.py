"""The OpenAPI 3.1 document of the console's JSON API, generated from its route table.

Generated rather than hand-written so that it cannot drift from what the server
enforces: each operation's ``x-chuanyu-permission`` is the permission its guard
checks (the authorisation tests are driven from this document).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.console.accounts import ROLE_PERMISSIONS, Permission

if TYPE_CHECKING:
    from gateway.console.routes import RouteSpec

__all__ = ["openapi_document"]

_PATH_PARAM = re.compile(r"\{(\w+)\}")
_ERROR = {"$ref": "#/components/schemas/Error"}


def _roles_with(permission: Permission) -> list[str]:
    if permission is Permission.PUBLIC:
        return []
    return sorted(role.value for role, perms in ROLE_PERMISSIONS.items() if permission in perms)


def _operation(spec: RouteSpec) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(spec.path)
    ]
    parameters += [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": text,
            "schema": {"type": "string"},
        }
        for name, text in spec.query
    ]
    if spec.method == "POST" and spec.csrf:
        parameters.append(
            {
                "name": "X-CSRF-Token",
                "in": "header",
                "required": True,
                "description": "csrf_token of GET /api/session",
                "schema": {"type": "string"},
            }
        )
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {spec.content_type: {"schema": {}}}}
    }
    if spec.permission is not Permission.PUBLIC:
        responses["401"] = {
            "description": "No session (or bad token)",
            "content": {"application/json": {"schema": _ERROR}},
        }
        responses["403"] = {
            "description": "The operator's role may not, or the CSRF token is wrong",
            "content": {"application/json": {"schema": _ERROR}},
        }
    if spec.path == "/readyz":
        responses["503"] = {"description": "Not ready; the body names the failing checks"}
    if spec.path == "/login":
        responses["429"] = {"description": "Too many failed log-ins; see Retry-After"}
    security: list[dict[str, list[str]]]
    if spec.permission is Permission.PUBLIC:
        security = []
    elif spec.permission is Permission.METRICS:
        security = [{"session": []}, {"metricsToken": []}]
    else:
        security = [{"session": []}]
    operation: dict[str, Any] = {
        "operationId": spec.handler,
        "summary": spec.summary,
        "security": security,
        "parameters": parameters,
        "responses": responses,
        "x-chuanyu-permission": spec.permission.value,
        "x-chuanyu-roles": _roles_with(spec.permission),
    }
    if spec.path == "/login":
        operation["requestBody"] = {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["username", "password"],
                        "properties": {
                            "username": {"type": "string"},
                            "password": {"type": "string", "format": "password"},
                        },
                    }
                }
            }
        }
    return operation


def openapi_document(routes: Sequence[RouteSpec], bureau: str) -> dict[str, Any]:
    """Every non-page route (JSON API, stream, metrics, health) as an OpenAPI 3.1 document."""
    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        if spec.kind != "api":
            continue
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"Chuanyu Gateway console API (bureau {bureau})",
            "version": "1",
            "description": (
                "Operator console of one gateway node. Log in with POST /login (JSON), keep "
                "the session cookie, and send the session's CSRF token as X-CSRF-Token on "
                "every POST. Personal information is masked except through the logged "
                "'reveal' operation (role officer)."
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": f"chuanyu_console_{bureau}"},
                "metricsToken": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
    }
