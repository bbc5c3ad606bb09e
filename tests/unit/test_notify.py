"""Notifications for every kind of subscriber: JSON for e-mail and queues, AWS Chatbot's custom notification format
for chat channels (which drop any other message)."""

from __future__ import annotations

import json
from typing import Any

from promotion.result.notify import chat_notification, publish_notice


class RecordingSns:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, **request: Any) -> dict[str, str]:
        self.published.append(request)
        return {"MessageId": "1"}


def test_chat_notifications_follow_chatbots_custom_notification_schema() -> None:
    notice = chat_notification(
        title="Rollout held",
        description="stage 1 paused",
        event_type="PromotionRolloutHeld",
        thread_id="fraud-detection-r1",
        next_steps=["promote resume fraud-detection"],
        context={"stage": 1, "percent": 1.0, "missing": None},
    )
    assert (notice["version"], notice["source"]) == ("1.0", "custom")  # both required, with exactly these values
    assert notice["content"] == {
        "textType": "client-markdown",  # the only text type Chatbot renders
        "title": "Rollout held",
        "description": "stage 1 paused",
        "nextSteps": ["promote resume fraud-detection"],
    }
    assert notice["metadata"]["threadId"] == "fraud-detection-r1"  # one thread per promotion
    assert notice["metadata"]["additionalContext"] == {"stage": "1", "percent": "1.0"}  # strings only


def test_one_publish_carries_json_for_people_and_the_chat_form_for_chatbot() -> None:
    sns = RecordingSns()
    chat = chat_notification(title="t", description="d", event_type="e", thread_id="x")
    publish_notice(
        sns, "arn:aws:sns:us-east-1:123456789012:t", subject="s" * 150, detail={"outcome": "PROMOTED"}, chat=chat
    )
    (request,) = sns.published
    assert request["MessageStructure"] == "json" and len(request["Subject"]) == 100
    message = json.loads(request["Message"])
    assert set(message) == {"default", "email", "https"}  # SNS requires `default`; Chatbot subscribes over HTTPS
    assert json.loads(message["default"]) == {"outcome": "PROMOTED"} == json.loads(message["email"])
    assert json.loads(message["https"]) == chat
