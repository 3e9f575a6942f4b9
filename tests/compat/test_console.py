"""The web console (issue 18 §1) in a real browser: Playwright driving Debian's Chromium
headless against a real server. Sign-in, sessions (cookie flags, CSRF, expiry), creating a
key and changing its policy, a denied action refused, every key action, and the audit
trail naming the principal. Screenshots of each page go to tests/artifacts/console/."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import start_server, stop_server

from ._support import ACCOUNT, audit_events, new_principal
from ._xks import create_external_store, running_proxy

pytestmark = pytest.mark.compat

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
# .ci/run sets it: there the browser tests must run, never skip.
REQUIRED = os.environ.get("STRONGROOM_REQUIRE_BROWSER") == "1"
READ_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["kms:List*", "kms:Describe*", "kms:Get*"], "Resource": "*"}
    ],
}


def _browser_or_skip() -> Any:
    reason = ""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (pip install -e '.[test]')"
    if not reason and not os.path.exists(CHROMIUM):
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if reason:
        if REQUIRED:
            pytest.fail(f"the console's browser tests must run here: {reason}")
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _browser_or_skip()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = start_server(tmp_path_factory.mktemp("console") / "data")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def short_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A server whose console sessions end after 2 idle seconds."""
    os.environ["STRONGROOM_CONSOLE_IDLE_SECONDS"] = "2"
    try:
        server = start_server(tmp_path_factory.mktemp("console-short") / "data")
    finally:
        del os.environ["STRONGROOM_CONSOLE_IDLE_SECONDS"]
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def admin(browser: Any, console_server: Any) -> Any:
    """One page signed in as the admin, shared by the tests that act as the admin."""
    return admin_page(browser, console_server)


@pytest.fixture(scope="module")
def reader(console_server: Any) -> dict[str, Any]:
    """A user allowed to list, describe and get, and nothing else."""
    return new_principal(console_server, "reader", policy=READ_ONLY)


def new_page(browser: Any) -> Any:
    page = browser.new_context().new_page()
    page.set_default_timeout(5000)  # the server is local: a wait this long is a failure
    return page


def shot(page: Any, name: str) -> None:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def sign_in(browser: Any, server: Any, access_key_id: str, secret: str) -> Any:
    """A new browser context's page, signed in (asserted) with the given access key."""
    page = new_page(browser)
    page.goto(server.endpoint + "/console")
    page.fill("#AccessKeyId", access_key_id)
    page.fill("#SecretAccessKey", secret)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/keys$"))
    return page


def admin_page(browser: Any, server: Any) -> Any:
    return sign_in(browser, server, server.access_key_id, server.secret_access_key)


def create_key(page: Any, server: Any, spec: str, description: str, usage: str = "") -> str:
    page.goto(server.endpoint + "/console/keys/new")
    page.select_option("#KeySpec", spec)
    if usage:
        page.select_option("#KeyUsage", usage)
    page.fill("#Description", description)
    page.click("#create-key-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/keys/[0-9a-f-]{36}$"))
    return str(page.inner_text("#key-id"))


def flash(page: Any) -> str:
    return str(page.inner_text("#flash"))


def csrf_of(page: Any) -> str:
    return str(page.locator("input[name=csrf]").first.get_attribute("value"))


# -- sign-in and sessions ------------------------------------------------------------------


def test_sign_in_refuses_bad_credentials_without_saying_which_part(
    browser: Any, console_server: Any
) -> None:
    page = new_page(browser)
    messages = []
    for key_id, secret in (
        (console_server.access_key_id, "not-the-secret"),
        ("AKIAUNKNOWNUNKNOWN00", console_server.secret_access_key),
    ):
        page.goto(console_server.endpoint + "/console/sign-in")
        page.fill("#AccessKeyId", key_id)
        page.fill("#SecretAccessKey", secret)
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.click("form button[type=submit]")
        assert answer.value.status == 401
        messages.append(page.inner_text("#sign-in-error"))
    assert messages[0] == messages[1] == "The access key ID or secret access key is not correct."
    assert not [c for c in page.context.cookies() if c["name"] == "strongroom_console"]
    shot(page, "sign-in-refused")
    page.goto(console_server.endpoint + "/console/keys")  # no session: back to sign-in
    assert page.url.endswith("/console/sign-in")


def test_session_cookie_is_httponly_samesite_strict_and_holds_no_secret(
    browser: Any, console_server: Any
) -> None:
    page = admin_page(browser, console_server)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "strongroom_console"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/console"
    assert console_server.secret_access_key not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # not readable by scripts
    assert page.inner_text("#principal") == f"arn:aws:iam::{ACCOUNT}:user/admin"
    # Sign-in went through the pipeline: an STS GetCallerIdentity by the admin.
    _, events = audit_events(console_server, "--event-name", "GetCallerIdentity")
    assert any(e["userAgent"].startswith("strongroom-console") for e in events)


def test_a_forged_or_altered_cookie_is_no_session(browser: Any, console_server: Any) -> None:
    page = admin_page(browser, console_server)
    context = page.context
    (cookie,) = [c for c in context.cookies() if c["name"] == "strongroom_console"]
    version, payload, mac = cookie["value"].split(".")
    forged = {**cookie, "value": f"{version}.{payload}.{mac[:-2]}AA"}
    context.clear_cookies()
    context.add_cookies([forged])
    page.goto(console_server.endpoint + "/console/keys")
    assert page.url.endswith("/console/sign-in")


def test_a_session_expires_when_idle(browser: Any, short_server: Any) -> None:
    page = admin_page(browser, short_server)
    page.goto(short_server.endpoint + "/console/aliases")
    assert page.url.endswith("/console/aliases")
    time.sleep(2.2)
    page.goto(short_server.endpoint + "/console/aliases")
    assert page.url.endswith("/console/sign-in")
    assert "Sign in" in flash(page)


def test_failed_sign_ins_are_limited(browser: Any, short_server: Any) -> None:
    page = new_page(browser)
    statuses = []
    for _ in range(6):
        page.goto(short_server.endpoint + "/console/sign-in")
        page.fill("#AccessKeyId", short_server.access_key_id)
        page.fill("#SecretAccessKey", "wrong")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.click("form button[type=submit]")
        statuses.append(answer.value.status)
    assert statuses == [401] * 5 + [429]
    assert "Too many failed sign-ins" in page.inner_text("#sign-in-error")
    # Now even the right secret waits: the limit is not a hint that it was right.
    page.fill("#SecretAccessKey", short_server.secret_access_key)
    page.click("form button[type=submit]")
    assert page.url.endswith("/console/sign-in")


def test_a_post_without_the_csrf_token_is_refused(
    admin: Any, browser: Any, console_server: Any
) -> None:
    kms = console_server.client()
    key_id = kms.create_key(Description="csrf target")["KeyMetadata"]["KeyId"]
    page = admin
    page.goto(f"{console_server.endpoint}/console/keys/{key_id}")
    url = f"{console_server.endpoint}/console/keys/{key_id}/disable"
    assert page.request.post(url, form={}).status == 403
    assert page.request.post(url, form={"csrf": "x" * 43}).status == 403
    other_site = {"Origin": "http://evil.example"}
    answer = page.request.post(url, form={"csrf": csrf_of(page)}, headers=other_site)
    assert answer.status == 403
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    answer = page.request.post(url, form={"csrf": csrf_of(page)}, max_redirects=0)
    assert answer.status == 303
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"


# -- keys ----------------------------------------------------------------------------------


def test_create_key_offers_every_spec_and_creates_them(
    admin: Any, browser: Any, console_server: Any
) -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("kms")
    specs = set(model.shape_for("KeySpec").enum)
    page = admin
    page.goto(console_server.endpoint + "/console/keys/new")
    offered = set(page.eval_on_selector_all("#KeySpec option", "os => os.map(o => o.value)"))
    assert offered == specs
    shot(page, "create-key")
    kms = console_server.client()
    for spec, usage in (
        ("SYMMETRIC_DEFAULT", ""),
        ("RSA_2048", "SIGN_VERIFY"),
        ("ECC_NIST_P256", "KEY_AGREEMENT"),
        ("HMAC_256", ""),
        ("ML_DSA_44", ""),
    ):
        key_id = create_key(page, console_server, spec, f"console {spec}", usage)
        assert flash(page).startswith("Key created.")
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        assert meta["KeySpec"] == spec
        if usage:
            assert meta["KeyUsage"] == usage
    # What users type is shown as text, never as markup.
    create_key(page, console_server, "SYMMETRIC_DEFAULT", '<b id="injected">x</b>')
    assert page.locator("#injected").count() == 0
    assert '<b id="injected">x</b>' in page.inner_text("#metadata")
    # The usage list follows the spec: HMAC keys only generate and verify MACs.
    page.goto(console_server.endpoint + "/console/keys/new")
    page.select_option("#KeySpec", "HMAC_384")
    assert page.input_value("#KeyUsage") == "GENERATE_VERIFY_MAC"


def test_keys_list_filters_and_sorts(admin: Any, browser: Any, console_server: Any) -> None:
    kms = console_server.client()
    tagged = kms.create_key(
        Description="list-filter tagged", Tags=[{"TagKey": "team", "TagValue": "blue"}]
    )["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/console-filter", TargetKeyId=tagged)
    signing = kms.create_key(
        Description="list-filter signing", KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY"
    )["KeyMetadata"]["KeyId"]
    page = admin

    def shown(query: str) -> list[str]:
        page.goto(f"{console_server.endpoint}/console/keys?{query}")
        ids = page.eval_on_selector_all("#keys tbody tr", "rs => rs.map(r => r.dataset.keyId)")
        return list(ids)

    assert shown("tag=team%3Dblue") == [tagged]
    assert shown("alias=console-filter") == [tagged]
    assert signing in shown("spec=ECC_NIST_P384&usage=SIGN_VERIFY")
    assert tagged not in shown("spec=ECC_NIST_P384")
    assert tagged in shown("rotation=disabled&origin=AWS_KMS&state=Enabled")
    assert signing not in shown("rotation=disabled")
    by_spec = shown("q=list-filter&sort=spec&order=asc")
    assert by_spec == [signing, tagged]  # ECC_NIST_P384 < SYMMETRIC_DEFAULT
    assert shown("q=list-filter&sort=spec&order=desc") == [tagged, signing]
    page.goto(f"{console_server.endpoint}/console/keys")
    page.select_option("#f-spec", "ECC_NIST_P384")  # the filter form works by keyboard too
    page.focus("#f-q")
    page.keyboard.type("list-filter")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*spec=ECC_NIST_P384.*"))
    assert page.eval_on_selector_all("#keys tbody tr", "rs => rs.length") == 1
    page.goto(f"{console_server.endpoint}/console/keys")
    shot(page, "keys")


def test_edit_policy_in_the_json_editor(admin: Any, browser: Any, console_server: Any) -> None:
    kms = console_server.client()
    page = admin
    key_id = create_key(page, console_server, "SYMMETRIC_DEFAULT", "policy editing")
    before = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    document = json.loads(before)
    document["Statement"].append(
        {
            "Sid": "ConsoleAdded",
            "Effect": "Deny",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:ScheduleKeyDeletion",
            "Resource": "*",
        }
    )
    page.fill("#Policy", json.dumps(document, indent=2))
    assert page.inner_text("#policy-status") == "Valid JSON."
    page.click("#policy-save")
    page.wait_for_load_state()
    assert flash(page) == "Key policy saved."
    saved = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert saved["Statement"][-1]["Sid"] == "ConsoleAdded"

    # Invalid JSON: the editor says so and does not send it.
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.method))
    page.fill("#Policy", '{"Version": "2012-10-17", "Statement": [')
    assert page.inner_text("#policy-status").startswith("Not valid JSON")
    assert page.get_attribute("#Policy", "aria-invalid") == "true"
    page.click("#policy-save")
    assert "POST" not in requests
    shot(page, "key-policy-invalid")
    # Sent anyway (no script): the server refuses it and changes nothing.
    url = f"{console_server.endpoint}/console/keys/{key_id}/policy"
    form = {"csrf": csrf_of(page), "Policy": '{"Statement": ['}
    assert page.request.post(url, form=form, max_redirects=0).status == 303
    page.goto(f"{console_server.endpoint}/console/keys/{key_id}")
    assert flash(page).startswith("The key policy is not valid JSON")
    # Valid JSON that is not a valid policy: the API's MalformedPolicyDocumentException.
    form = {"csrf": csrf_of(page), "Policy": '{"Statement": 5}'}
    assert page.request.post(url, form=form, max_redirects=0).status == 303
    page.goto(f"{console_server.endpoint}/console/keys/{key_id}")
    assert flash(page).startswith("MalformedPolicyDocumentException")
    after = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert after == saved


def test_key_actions(admin: Any, browser: Any, console_server: Any, reader: dict[str, Any]) -> None:
    kms = console_server.client()
    page = admin
    key_id = create_key(page, console_server, "SYMMETRIC_DEFAULT", "actions")

    def state() -> str:
        return str(kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"])

    page.click("#action-disable")
    assert flash(page) == "Key disabled." and state() == "Disabled"
    page.click("#action-enable")
    assert flash(page) == "Key enabled." and state() == "Enabled"

    page.fill("#NewTagKey", "env")
    page.fill("#NewTagValue", "test")
    page.click("#action-tag")
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "env", "TagValue": "test"}]
    page.locator("#tags").get_by_role("button", name="Remove").click()
    assert flash(page) == "Tag removed." and kms.list_resource_tags(KeyId=key_id)["Tags"] == []

    page.fill("#AliasName", "alias/console-actions")
    page.click("#action-alias-create")
    assert flash(page) == "Alias created."

    page.click("text=Create a grant")
    page.fill("#GranteePrincipal", reader["arn"])
    page.fill("#RetiringPrincipal", f"arn:aws:iam::{ACCOUNT}:user/admin")
    page.check("#op-Encrypt")
    page.check("#op-Decrypt")
    page.click("#action-grant-create")
    assert flash(page) == "Grant created."
    (grant,) = kms.list_grants(KeyId=key_id)["Grants"]
    assert sorted(grant["Operations"]) == ["Decrypt", "Encrypt"]
    page.locator("#grants").get_by_role("button", name="Retire").click()
    assert flash(page) == "Grant retired." and kms.list_grants(KeyId=key_id)["Grants"] == []
    kms.create_grant(KeyId=key_id, GranteePrincipal=reader["arn"], Operations=["Encrypt"])
    page.reload()
    page.once("dialog", lambda d: d.accept())
    page.locator("#grants").get_by_role("button", name="Revoke").click()
    assert flash(page) == "Grant revoked." and kms.list_grants(KeyId=key_id)["Grants"] == []

    page.fill("#RotationPeriodInDays", "180")
    page.click("#action-rotation-enable")
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] and status["RotationPeriodInDays"] == 180
    page.once("dialog", lambda d: d.accept())
    page.click("#action-rotate-now")
    assert flash(page) == "Rotation started."
    page.reload()
    assert "ON_DEMAND" in page.inner_text("#rotations")
    page.click("#action-rotation-disable")
    assert not kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]

    page.once("dialog", lambda d: d.accept())
    page.fill("#PendingWindowInDays", "7")
    page.click("#action-schedule-deletion")
    assert flash(page) == "Key deletion scheduled." and state() == "PendingDeletion"
    page.click("#action-cancel-deletion")
    assert state() == "Disabled"
    page.goto(f"{console_server.endpoint}/console/keys/{key_id}")
    assert page.locator("#use-chart rect").count() == 48  # 24 hours, two bars each
    shot(page, "key")

    page.goto(console_server.endpoint + "/console/aliases")
    assert "alias/console-actions" in page.inner_text("#aliases")
    shot(page, "aliases")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete alias alias/console-actions").click()
    assert flash(page) == "Alias deleted."


def test_a_denied_action_is_refused_for_a_limited_principal(
    browser: Any, console_server: Any, reader: dict[str, Any]
) -> None:
    kms = console_server.client()
    key_id = kms.create_key(Description="reader's view")["KeyMetadata"]["KeyId"]
    page = sign_in(browser, console_server, reader["AccessKeyId"], reader["SecretAccessKey"])
    assert page.inner_text("#principal") == reader["arn"]
    page.goto(f"{console_server.endpoint}/console/keys/{key_id}")
    assert page.inner_text("#key-state") == "Enabled"  # reading is allowed
    page.click("#action-disable")
    message = flash(page)
    assert message.startswith("AccessDeniedException")
    assert "kms:DisableKey" in message and reader["arn"] in message
    shot(page, "denied")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    page.goto(console_server.endpoint + "/console/keys/new")
    page.fill("#Description", "not allowed")
    page.click("#create-key-form button[type=submit]")
    assert flash(page).startswith("AccessDeniedException")
    # The audit trail has the refusal, as the reader's, made from the console.
    _, events = audit_events(console_server, "--event-name", "DisableKey")
    (event,) = [e for e in events if e["userIdentity"]["arn"] == reader["arn"]]
    assert event["errorCode"] == "AccessDeniedException"
    assert event["userAgent"].startswith("strongroom-console")
    # The reader's audit page shows its own events only.
    page.goto(console_server.endpoint + "/console/audit")
    principals = set(
        page.eval_on_selector_all(".event-principal", "es => es.map(e => e.textContent)")
    )
    assert principals == {reader["arn"]}


def test_actions_appear_in_the_audit_trail_as_the_principals(
    admin: Any, browser: Any, console_server: Any
) -> None:
    page = admin
    key_id = create_key(page, console_server, "SYMMETRIC_DEFAULT", "audited")
    page.click("#action-disable")
    admin_arn = f"arn:aws:iam::{ACCOUNT}:user/admin"
    _, events = audit_events(console_server)
    mine = [e for e in events if key_id in json.dumps(e.get("resources"))]
    names = {e["eventName"] for e in mine}
    assert {"CreateKey", "DisableKey", "DescribeKey", "GetKeyPolicy"} <= names
    for event in mine:
        assert event["userIdentity"]["arn"] == admin_arn
        assert event["userIdentity"]["accessKeyId"] == console_server.access_key_id
        assert event["userAgent"].startswith("strongroom-console (")
        assert event["eventSource"] == "kms.amazonaws.com"
    (disable,) = [e for e in mine if e["eventName"] == "DisableKey"]
    assert disable["requestParameters"] == {"keyId": key_id}
    # The console's own audit page, filtered to this key and event.
    page.goto(f"{console_server.endpoint}/console/audit?name=DisableKey&resource={key_id}")
    assert page.eval_on_selector_all(".event-name", "es => es.map(e => e.textContent)") == [
        "DisableKey"
    ]
    assert page.inner_text(".event-principal") == admin_arn
    shot(page, "audit")


def test_custom_key_stores_page_shows_connection_state(
    admin: Any, console_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page = admin
    page.goto(console_server.endpoint + "/console/key-stores")
    assert page.inner_text("#no-stores").startswith("This account has no custom key stores")
    if shutil.which("softhsm2-util") is None and not REQUIRED:
        pytest.skip("the XKS proxy's token needs SoftHSM2 (apt-get install softhsm2)")
    kms = console_server.client()
    for proxy in running_proxy(tmp_path_factory, "console-xks"):
        store_id = create_external_store(kms, proxy, "console-xks")
        page.reload()
        row = page.locator("#key-stores tbody tr", has_text=store_id)
        assert row.locator(".state").inner_text() == "DISCONNECTED"
        assert proxy.endpoint + proxy.uri_path in row.inner_text()
        kms.connect_custom_key_store(CustomKeyStoreId=store_id)
        deadline = time.monotonic() + 5  # CONNECTING until the proxy answers
        while True:
            page.reload()
            state = row.locator(".state").inner_text()
            if state != "CONNECTING" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert state == "CONNECTED"
    shot(page, "key-stores")


def test_deleting_the_access_key_ends_its_sessions(browser: Any, console_server: Any) -> None:
    user = new_principal(console_server, "leaver", policy=READ_ONLY)
    page = sign_in(browser, console_server, user["AccessKeyId"], user["SecretAccessKey"])
    console_server.admin("delete-access-key", user["AccessKeyId"])
    deadline = time.monotonic() + 5  # the server hears of it with its next change poll
    while True:
        page.goto(console_server.endpoint + "/console/aliases")
        if page.url.endswith("/console/sign-in") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert page.url.endswith("/console/sign-in")
    assert flash(page) == "Your session ended: the access key is no longer valid."


def test_signing_out_ends_the_session(browser: Any, console_server: Any) -> None:
    page = admin_page(browser, console_server)
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r".*/console/sign-in$"))
    assert flash(page) == "Signed out."
    page.goto(console_server.endpoint + "/console/keys")
    assert page.url.endswith("/console/sign-in")


def teardown_module() -> None:
    """Screenshots stay for the artefacts; a leftover empty directory does not."""
    if ARTIFACTS.is_dir() and not any(ARTIFACTS.iterdir()):
        shutil.rmtree(ARTIFACTS)
