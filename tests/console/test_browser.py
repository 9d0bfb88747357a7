"""The console in a real browser: headless Chromium driven by Playwright, in the test's loop.

Debian's ``chromium`` is used (Playwright's own browser download is not available
here). A missing browser fails these tests; it never skips them.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from console_support import (
    COMPLAINANT_NAME,
    COMPLAINANT_PHONE,
    COMPLAINT,
    REGISTRATION,
    SCREENSHOTS,
    SUINING,
    Account,
    ConsolePair,
    eventually,
    log_entries,
    outbound_state,
    record,
    send_local,
)
from playwright.async_api import Browser, Page, async_playwright, expect

from gateway.console import Role

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} not found: install it with `apt-get install -y chromium` "
            "(.ci/run does); browser tests never skip"
        )
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield instance
        finally:
            await instance.close()


async def _logged_in(browser: Browser, pair: ConsolePair, account: Account) -> Page:
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1360, "height": 900})
    page = await context.new_page()
    await page.goto(pair.url() + "/transfers")
    # Not logged in: the console sends us to its log-in page first.
    await expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)transfers$"))
    await page.get_by_label("用户名").fill(account.username)
    await page.get_by_label("密码").fill(account.password)
    await page.get_by_role("button", name="登录").click()
    await expect(page).to_have_url(f"{pair.url()}/transfers")
    await expect(page.locator("#operator")).to_contain_text(account.username)
    return page


async def _delivered(pair: ConsolePair, data: dict[str, object]) -> str:
    message_id = await send_local(pair.tongliang, record(data))

    async def done() -> bool:
        return await outbound_state(pair.tongliang, message_id) == "delivered"

    await eventually(done, what=f"delivery of {message_id}")
    return message_id


async def test_viewer_filters_transfers_and_sees_masked_record(
    console_pair: ConsolePair, browser: Browser
) -> None:
    complaint_id = await _delivered(console_pair, COMPLAINT)
    registration_id = await _delivered(console_pair, REGISTRATION)
    page = await _logged_in(browser, console_pair, console_pair.accounts[Role.VIEWER])

    rows = page.locator("#transfers tbody tr[data-message-id]")
    await expect(rows).to_have_count(2)
    await page.locator("select[name=record_type]").select_option("consumer_complaint")
    await page.locator("select[name=direction]").select_option("outbound")
    await page.get_by_role("button", name="查询").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-message-id", complaint_id)
    # Search by USCC finds the registration.
    await page.goto(console_pair.url() + "/transfers")
    await page.locator("input[name=q]").fill(REGISTRATION["uscc"])
    await page.get_by_role("button", name="查询").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-message-id", registration_id)

    await page.goto(console_pair.url() + "/")
    await expect(page.locator("#counts")).to_contain_text("消费投诉")
    await expect(page.locator(".card.peer")).to_contain_text("可达")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)

    await page.goto(console_pair.url() + "/transfers")
    await page.get_by_role("link", name=complaint_id).click()
    await expect(page.locator("#masked")).to_be_visible()
    await expect(page.locator("#signature-verdict")).to_have_text("有效")
    await expect(page.locator("#receipt")).to_contain_text("回执有效")
    await expect(page.locator("tr[data-field='complainant.name'] td")).to_have_text("李*")
    await expect(page.locator("tr[data-field='complainant.phone'] td")).to_have_text("138****8000")
    await expect(page.locator("#reveal")).to_have_count(0)  # a viewer may not unmask
    content = await page.content()
    assert COMPLAINANT_NAME not in content and COMPLAINANT_PHONE not in content
    await page.screenshot(path=str(SCREENSHOTS / "record-detail.png"), full_page=True)
    await page.context.close()


async def test_officer_unmasks_and_the_view_is_logged(
    console_pair: ConsolePair, browser: Browser
) -> None:
    message_id = await _delivered(console_pair, COMPLAINT)
    officer = console_pair.accounts[Role.OFFICER]
    page = await _logged_in(browser, console_pair, officer)
    await page.goto(f"{console_pair.url()}/transfers/outbound/{message_id}")
    await expect(page.locator("tr[data-field='complainant.name'] td")).to_have_text("李*")
    await page.locator("#reveal").click()
    await expect(page.locator("#unmasked")).to_be_visible()
    await expect(page.locator("tr[data-field='complainant.name'] td")).to_have_text(
        COMPLAINANT_NAME
    )
    await expect(page.locator("tr[data-field='complainant.phone'] td")).to_have_text(
        COMPLAINANT_PHONE
    )
    # The view is in the transfer log (and on the record's own timeline).
    await expect(page.locator("#timeline tr[data-kind='personal_data_viewed']")).to_have_count(1)
    entries = await log_entries(console_pair.tongliang, "personal_data_viewed")
    assert [e.message_id for e in entries] == [message_id]
    assert json.loads(entries[0].detail)["operator"] == officer.username
    await page.context.close()


async def test_live_tail_shows_a_new_entry(console_pair: ConsolePair, browser: Browser) -> None:
    page = await _logged_in(browser, console_pair, console_pair.accounts[Role.VIEWER])
    await page.goto(console_pair.url() + "/tail")
    await expect(page.locator("#stream-state")).to_have_attribute("data-state", "open")
    before = await page.locator("#tail tbody tr").count()
    message_id = await send_local(console_pair.tongliang, record(COMPLAINT))
    # No reload: the rows arrive over server-sent events.
    new_row = page.locator(f"#tail tbody tr.new:has(a:text-is('{message_id}'))")
    await expect(new_row.first).to_be_visible()
    await expect(page.locator("#tail tbody tr.new[data-kind='signed']")).to_have_count(1)
    assert await page.locator("#tail tbody tr").count() > before
    await page.context.close()


async def test_admin_redrives_a_dead_letter_and_viewer_is_refused(
    dead_letter_pair: ConsolePair, browser: Browser
) -> None:
    pair = dead_letter_pair
    message_id = await send_local(pair.tongliang, record(COMPLAINT))

    async def dead() -> bool:
        return await outbound_state(pair.tongliang, message_id) == "dead_lettered"

    await eventually(dead, what="dead letter")

    viewer = await _logged_in(browser, pair, pair.accounts[Role.VIEWER])
    await viewer.goto(pair.url() + "/dead-letters")
    row = viewer.locator(f"#dead-letters tr[data-message-id='{message_id}']")
    await expect(row).to_contain_text("UNAVAILABLE")
    await expect(row.locator("button.redrive")).to_have_count(0)
    # Even a hand-made POST with the viewer's own CSRF token is refused.
    csrf = await viewer.locator("meta[name=csrf-token]").get_attribute("content")
    response = await viewer.request.post(
        f"{pair.url()}/dead-letters/{message_id}/redrive",
        form={"csrf_token": csrf or ""},
        max_redirects=0,
    )
    assert response.status == 403
    await viewer.context.close()
    assert await outbound_state(pair.tongliang, message_id) == "dead_lettered"

    pair.tongliang.route(SUINING, f"127.0.0.1:{pair.suining.peer_port}")
    admin = await _logged_in(browser, pair, pair.accounts[Role.ADMIN])
    await admin.goto(pair.url() + "/dead-letters")
    await admin.locator(f"#dead-letters tr[data-message-id='{message_id}'] button.redrive").click()
    await expect(admin.locator("#notice")).to_contain_text(message_id)

    async def delivered() -> bool:
        return await outbound_state(pair.tongliang, message_id) == "delivered"

    await eventually(delivered, what="delivery after re-drive")
    await admin.goto(pair.url() + "/dead-letters")
    await expect(admin.locator("#dead-letters")).to_contain_text("没有死信")
    await admin.context.close()


async def test_wrong_password_is_refused(console_pair: ConsolePair, browser: Browser) -> None:
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    await page.goto(console_pair.url() + "/")
    await page.get_by_label("用户名").fill(console_pair.accounts[Role.VIEWER].username)
    await page.get_by_label("密码").fill("definitely-wrong")
    await page.get_by_role("button", name="登录").click()
    await expect(page.locator(".error")).to_have_text("用户名或密码错误")
    await context.close()
