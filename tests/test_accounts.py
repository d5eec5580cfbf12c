"""A person signs up, logs in, reads their profile and becomes a host too."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.auth.tokens import CachedToken, jwt_auth
from service.settings import Settings
from tests.api import PASSWORD, Client, assert_problem, login, register, signed_up, unique_email


async def count_users_with_email(settings: Settings, email: str) -> int:
    engine = create_async_engine(settings.async_database_url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(text("SELECT count(*) FROM users WHERE email = :e"), {"e": email})
            return int(result.scalar_one())
    finally:
        await engine.dispose()


async def test_register_answers_the_account_without_its_password(client: Client) -> None:
    email = unique_email("Mixed.Case")
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "name": "Ana Lima", "phone": "+351912345678"},
    )
    assert response.status_code == 201
    user = response.json()
    assert user["email"] == email.lower()
    assert user["roles"] == ["guest"]
    assert user["phone"] == "+351912345678"
    assert "password" not in response.text
    assert "argon2" not in response.text


async def test_register_with_both_roles(client: Client) -> None:
    user = await register(client, roles=["host", "guest"])
    assert user["roles"] == ["guest", "host"]


async def test_login_then_profile(client: Client) -> None:
    user = await register(client)
    response = await client.post("/api/v1/auth/login", json={"email": user["email"].upper(), "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] > 0
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200
    assert me.json() == user


async def test_wrong_password_and_unknown_email_answer_the_same_401(client: Client) -> None:
    user = await register(client)
    wrong = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": "not the password"})
    unknown = await client.post("/api/v1/auth/login", json={"email": unique_email(), "password": PASSWORD})
    assert assert_problem(wrong, 401)["detail"] == assert_problem(unknown, 401)["detail"]


async def test_duplicate_email_is_a_409_and_keeps_one_account(client: Client, settings: Settings) -> None:
    user = await register(client)
    again = await client.post(
        "/api/v1/auth/register",
        json={"email": user["email"].upper(), "password": "another password", "name": "Someone Else"},
    )
    problem = assert_problem(again, 409)
    assert problem["field"] == "email"
    assert await count_users_with_email(settings, user["email"]) == 1
    await login(client, user["email"])  # the first password still works


async def test_malformed_bodies_name_the_field_and_create_nothing(client: Client, settings: Settings) -> None:
    email = unique_email()
    cases = [
        ({"email": email, "password": "short", "name": "Ana"}, "password"),
        ({"email": "not-an-email", "password": PASSWORD, "name": "Ana"}, "email"),
        ({"email": email, "password": PASSWORD}, "name"),
        ({"email": email, "password": PASSWORD, "name": "Ana", "roles": ["admin"]}, "roles"),
        ({"email": email, "password": PASSWORD, "name": "Ana", "phone": "12"}, "phone"),
        ({"email": email, "password": PASSWORD, "name": "Ana", "is_admin": True}, "is_admin"),
    ]
    for body, field in cases:
        problem = assert_problem(await client.post("/api/v1/auth/register", json=body), 400)
        assert field in [error["field"] for error in problem["errors"]] or field in problem["detail"], problem
    not_json = await client.post(
        "/api/v1/auth/register", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_problem(not_json, 400)
    assert await count_users_with_email(settings, email) == 0


async def test_profile_needs_a_valid_token(client: Client) -> None:
    assert_problem(await client.get("/api/v1/users/me"), 401)
    assert_problem(await client.get("/api/v1/users/me", headers={"Authorization": "Bearer forged.token.here"}), 401)


async def test_adding_the_host_role_answers_a_token_that_carries_it(client: Client) -> None:
    user, headers = await signed_up(client)
    response = await client.post("/api/v1/users/me/roles", json={"role": "host"}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["roles"] == ["guest", "host"]
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["roles"] == ["guest", "host"]
    again = await client.post("/api/v1/users/me/roles", json={"role": "host"}, headers=headers)
    assert again.json()["user"]["roles"] == ["guest", "host"]
    assert user["id"] == me.json()["id"]


async def test_adding_an_unknown_role_is_refused(client: Client) -> None:
    _, headers = await signed_up(client)
    problem = assert_problem(await client.post("/api/v1/users/me/roles", json={"role": "admin"}, headers=headers), 400)
    assert problem["errors"][0]["field"] == "role"
    me = await client.get("/api/v1/users/me", headers=headers)
    assert me.json()["roles"] == ["guest"]


async def test_a_token_seen_before_still_stops_working_when_it_expires(client: Client, settings: Settings) -> None:
    """Verified tokens are cached by their text (service.auth.tokens), their expiry is checked on every request."""
    user = await register(client)
    auth = jwt_auth(dataclasses.replace(settings, jwt_ttl_seconds=1))
    token = auth.create_token(identifier=user["id"], token_extras={"roles": ["guest"]})
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200  # now from the cache
    expiry = CachedToken.decode(token, settings.jwt_secret, auth.algorithm).exp
    # Waiting for the clock is the point here; there is no event to await instead.
    await asyncio.sleep((expiry - dt.datetime.now(dt.UTC)).total_seconds() + 0.05)
    assert_problem(await client.get("/api/v1/users/me", headers=headers), 401)
