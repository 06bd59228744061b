"""POST /twilio/sms/status: delivery progress lands on the stored message."""

from __future__ import annotations

from tests.sms.conftest import SmsServer, reply_of, status_callback_of


async def test_status_callback_updates_the_inline_reply(sms_server: SmsServer) -> None:
    response = await sms_server.text("Hello")
    assert reply_of(response) is not None
    callback = status_callback_of(response)
    assert callback.startswith(sms_server.settings.public_base_url + "/twilio/sms/status?m=")
    sid = "SM" + "a" * 32

    # Twilio signs the callback URL exactly as given, query string included.
    sent = await sms_server.post(callback, {"MessageSid": sid, "MessageStatus": "sent"})
    assert sent.status_code == 204
    reply = (await sms_server.messages())[-1]
    assert (reply.message_sid, reply.status) == (sid, "sent")

    delivered = {"MessageSid": sid, "MessageStatus": "delivered", "SmsStatus": "delivered"}
    assert (await sms_server.post(callback, delivered)).status_code == 204
    # A late "sent" must not undo "delivered".
    assert (
        await sms_server.post(callback, {"MessageSid": sid, "MessageStatus": "sent"})
    ).status_code == 204
    reply = (await sms_server.messages())[-1]
    assert reply.status == "delivered" and reply.error_code is None


async def test_failure_keeps_the_error_code(sms_server: SmsServer) -> None:
    callback = status_callback_of(await sms_server.text("Hello"))
    sid = "SM" + "b" * 32
    failed = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert (await sms_server.post(callback, failed)).status_code == 204
    reply = (await sms_server.messages())[-1]
    assert (reply.status, reply.error_code) == ("undelivered", "30003")


async def test_unknown_message_is_acknowledged_and_changes_nothing(sms_server: SmsServer) -> None:
    url = "/twilio/sms/status"
    params = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "delivered"}
    assert (await sms_server.post(url, params)).status_code == 204
    assert await sms_server.repo.by_sid(params["MessageSid"]) is None
