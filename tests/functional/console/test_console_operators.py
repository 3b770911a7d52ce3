"""Token mode with named operators (hashed tokens from a file), throttled sign-in, and sign-out."""

from __future__ import annotations

import json
import logging
import re
import stat

from console_world import World

from console.operators import add_operator, main, token_hash


def test_each_operator_signs_in_with_their_own_token_and_is_audited_by_name(world: World, console_client,
                                                                            tmp_path) -> None:
    # GIVEN an operators file with alice (every site) and bob (demo-hq only), tokens stored hashed
    path = tmp_path / "operators.json"
    alice = add_operator(path, "alice", "*")
    bob = add_operator(path, "bob", "demo-hq")
    stored = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [o["token_sha256"] for o in stored["operators"]] == [token_hash(alice), token_hash(bob)]
    assert alice not in path.read_text() and bob not in path.read_text()
    # WHEN each opens the console with their token
    first = console_client(sign_in=False, operators_file=str(path))
    second = console_client(sign_in=False, operators_file=str(path))
    assert first.get(f"/alerts?token={alice}").status_code == 303
    assert second.get(f"/alerts?token={bob}").status_code == 303
    # THEN each is themself, with their own sites
    assert "alice · all sites" in first.get("/alerts").text
    bob_page = second.get("/alerts").text
    assert "bob · demo-hq" in bob_page
    assert 'data-camera-id="dock-2"' not in second.get("/cameras").text
    # AND with the file, the single start-up token no longer signs anyone in
    assert console_client(sign_in=False, operators_file=str(path)).get("/alerts?token=" + "t" * 32).status_code == 401


def test_operators_cli_prints_the_token_once(tmp_path, capsys) -> None:
    path = tmp_path / "ops.json"
    assert main(["add", "carol", "--sites", "demo-port", "--file", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["operator"] == "carol"
    assert json.loads(path.read_text())["operators"][0]["token_sha256"] == token_hash(printed["token"])


def test_wrong_tokens_are_throttled_per_address_and_logged_with_it(console_client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="console.app")
    client = console_client(sign_in=False)
    # WHEN one address tries five wrong tokens
    for _ in range(5):
        assert client.get("/alerts?token=wrong-token-0123456789").status_code == 401
    # THEN the sixth try - even with the right token - is a 429 with Retry-After
    response = client.get("/alerts?token=" + "t" * 32)
    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= 300
    assert response.headers["x-frame-options"] == "DENY"
    # AND each refusal names the client address
    refused = [r.getMessage() for r in caplog.records if "sign-in refused" in r.getMessage()]
    assert refused == ["sign-in refused from testclient: wrong token"] * 5
    assert any("sign-in throttled from testclient" in r.getMessage() for r in caplog.records)


def test_sign_out_ends_the_session(console_client) -> None:
    client = console_client()
    html = client.get("/alerts").text
    cookie = client.cookies.get("vigil_session")
    token = re.search(r'<form class="signout"[^>]*><input type="hidden" name="csrf_token" value="([0-9a-f]+)"',
                      html).group(1)
    response = client.post("/signout", data={"csrf_token": token})
    assert response.status_code == 200 and "You are signed out" in response.text
    assert client.get("/alerts").status_code == 401
    # AND the old cookie, replayed, is refused
    client.cookies.set("vigil_session", cookie)
    assert "signed out" in client.get("/alerts").text
