"""Secrets never leave in an error or a log line, derived ones included (OAuth tokens, Basic credentials,
the webhook URL), not even through httpx's own request log; alert text cannot ping a channel or spoof links.
"""

from __future__ import annotations

import base64
import logging

import httpx
import pytest

from od_scheduler.clients.alerts import AlertWebhookClient
from od_scheduler.clients.cobalt import CobaltClient
from od_scheduler.clients.retry import RetryPolicy
from od_scheduler.clients.vinsolutions import VinsolutionsClient
from od_scheduler.exceptions import PermanentUpstreamError
from od_scheduler.hooks.stores.executions import MAX_STORED_ERROR_CHARS, stored_error
from od_scheduler.models.alert import Alert, AlertDealer, AlertKind, Severity, slack_escape

from .conftest import Script

pytestmark = pytest.mark.unit

ACCESS_TOKEN = "vs-access-7f3a9c2e41d8"
WEBHOOK = "https://hooks.slack.com/services/T0001/B0002/XyZsecretWebhookPath"


def all_logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


def test_a_vinsolutions_error_echoing_the_access_token_never_shows_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    told: list[str] = []
    script = Script(
        httpx.Response(200, json={"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}),
        lambda request: httpx.Response(
            400,
            text=f"Bad request: dealer unknown for {request.headers['Authorization']} "
            f"(token={ACCESS_TOKEN}, raw {ACCESS_TOKEN})",
        ),
    )
    with (
        VinsolutionsClient(
            base_url="https://gateway.vinsolutions.test",
            client_id="od-client",
            client_secret="vs-secret-9913",
            token_url="https://auth.vinsolutions.test/oauth/token",
            api_key="vs-api-key-4471",
            transport=script.transport,
            retry=RetryPolicy(max_attempts=1),
            on_secret=told.append,
        ) as client,
        pytest.raises(PermanentUpstreamError) as caught,
    ):
        list(client.iter_inventory("D-100"))
    assert script.requests[1].headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"  # it was really sent
    assert ACCESS_TOKEN not in str(caught.value)
    assert "Bearer ***" in str(caught.value)
    assert ACCESS_TOKEN not in all_logged(caplog)
    assert ACCESS_TOKEN in told, "the access token reaches Airflow's masker too (hooks pass mask_secret)"
    assert "vs-secret-9913" in told


def test_the_webhook_url_is_in_no_log_record_not_even_httpx_s(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(
        logging.DEBUG, logger="httpx"
    )  # Airflow's logging config lowers it; a deployment may not
    script = Script(httpx.Response(200, text="ok"), httpx.Response(404, text=f"no such hook {WEBHOOK}"))
    with AlertWebhookClient(webhook_url=WEBHOOK, transport=script.transport) as client:
        assert client.post_alert({"text": "hello"}) == 200
        with pytest.raises(PermanentUpstreamError) as caught:
            client.post_alert({"text": "hello"})
    httpx_records = [r for r in caplog.records if r.name == "httpx"]
    assert httpx_records, "httpx logs each request at INFO: the filter redacts it, it does not drop it"
    assert "POST *** " in httpx_records[0].getMessage()
    logged = all_logged(caplog)
    for secret in ("XyZsecretWebhookPath", "T0001/B0002"):
        assert secret not in logged
        assert secret not in str(caught.value)


def test_the_basic_credentials_of_cobalt_are_redacted_as_sent() -> None:
    basic = base64.b64encode(b"od-cobalt:cobalt-pass-5512").decode()
    script = Script(
        lambda request: httpx.Response(401, text=f"refused {request.headers['Authorization']}"),
    )
    with (
        CobaltClient(
            base_url="https://feeds.cobalt.test",
            login="od-cobalt",
            password="cobalt-pass-5512",
            transport=script.transport,
        ) as client,
        pytest.raises(PermanentUpstreamError) as caught,
    ):
        list(client.iter_inventory("ACME"))
    assert script.requests[0].headers["Authorization"] == f"Basic {basic}"
    assert basic not in str(caught.value)
    assert "refused Basic ***" in str(caught.value)


def test_alert_text_is_escaped_for_slack() -> None:
    alert = Alert(
        kind=AlertKind.FAILURE_RATE,
        severity=Severity.ERROR,
        title="inventory_dealer_com: 1 of 1 dealer(s) failed",
        dealers=[
            AlertDealer(
                dealer_id="d-1",
                name="<!channel> Smith & Sons <http://evil.example|Open Dealer status>",
                platform="dealer.com",
                condition="failed",
                detail="PayloadError: widget said <!here> <@U024BE7LH> 1 > 0",
            )
        ],
    )
    text = alert.payload()["text"]
    for raw in ("<!channel>", "<!here>", "<@U024BE7LH>", "<http://evil.example|", " & "):
        assert raw not in text
    assert "&lt;!channel&gt; Smith &amp; Sons &lt;http://evil.example|Open Dealer status&gt;" in text
    assert "&lt;!here&gt; &lt;@U024BE7LH&gt; 1 &gt; 0" in text
    assert "<" not in text
    assert ">" not in text
    assert slack_escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert "<!channel>" in alert.text(), "the plain text (for logs) is unchanged"


def test_errors_are_stored_short_and_without_nul() -> None:
    stored = stored_error("try 1: PayloadError: " + "\x00body" * 2000)
    assert stored is not None
    assert "\x00" not in stored
    assert len(stored) <= MAX_STORED_ERROR_CHARS
    assert stored_error(None) is None
