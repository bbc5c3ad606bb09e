"""Notifications on the product's SNS topic, readable by each kind of subscriber: e-mail and queues get the notice as
indented JSON, and chat channels (AWS Chatbot, now Amazon Q Developer in chat applications, which subscribes to the
topic over HTTPS) get it in the custom notification format it renders ("Custom notifications using Amazon Q
Developer in chat applications": version 1.0, source custom, markdown content, threaded per promotion). Chatbot drops
any other message on its topics, so without the `https` form a channel would stay silent."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

MAX_SUBJECT = 100  # SNS's limit on Subject


def chat_notification(
    *,
    title: str,
    description: str,
    event_type: str,
    thread_id: str,
    next_steps: Sequence[str] = (),
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The custom notification Chatbot renders in Slack, Teams or Chime."""
    return {
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": title,
            "description": description,
            "nextSteps": list(next_steps),
        },
        "metadata": {
            "threadId": thread_id,
            "summary": title,
            "eventType": event_type,
            "additionalContext": {key: str(value) for key, value in (context or {}).items() if value is not None},
        },
    }


def publish_notice(
    sns: Any,
    topic_arn: str,
    *,
    subject: str,
    detail: Mapping[str, Any],
    chat: Mapping[str, Any],
) -> None:
    """One Publish with a message per protocol (MessageStructure json): `default` (and e-mail, SQS, Lambda) the
    detail as JSON, `https` the chat notification."""
    text = json.dumps(detail, indent=2, default=str)
    sns.publish(
        TopicArn=topic_arn,
        Subject=subject[:MAX_SUBJECT],
        MessageStructure="json",
        Message=json.dumps({"default": text, "email": text, "https": json.dumps(chat, default=str)}),
    )
