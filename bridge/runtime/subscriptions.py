"""`subscriptions:` entries at run time: NATS messages in, device commands out, replies back.

An `ActionSubscription` is given what it uses — the client, the worker its action runs on, a
`snapshot()` of the display and the display layer — not the bridge. The display actions (notify,
dismiss, indicator, app) go to the display layer here on the reactor thread and are answered at
once: a notification is answered when it is accepted, not when it has been shown. For a cheap action that answers nothing (and not
`overflow: latest`) the client hands it each read's run of messages at once and the run goes to
the worker as one batch; anything else comes and goes message by message. `plan_reload` decides
what a reload does with the running ones; `Bridge` carries the plan out (new subscriptions first,
then the removed ones go).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from twisted.logger import Logger

from bridge.actions import NO_LIMITS, AppRemoval, Command, IndicatorOff, is_batchable, is_display_action, reply_payload
from bridge.config.model import SubscriptionConfig
from bridge.devices.worker import DeviceWorker, Dropped
from bridge.display.model import Picture
from bridge.nats import NatsError
from bridge.runtime.intake import Intake
from bridge.runtime.srv import service_error_headers

log = Logger(namespace="bridge")


@dataclass
class SubscriptionStats:
    received: int = 0
    applied: int = 0
    errors: int = 0
    dropped: int = 0
    processing_ns: int = 0  # receipt to reply (queue wait included), summed over finished messages

    def add(self, other: "SubscriptionStats") -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


class ActionSubscription:
    """One `subscriptions:` entry: turns each message into a device command and replies."""

    def __init__(self, config: SubscriptionConfig, client, worker: DeviceWorker, snapshot: Callable[[], Any],
                 reactor, display=None, icons: Mapping[str, Picture] = NO_LIMITS.icons):
        self.config = config
        self.client = client
        self.worker = worker  # sensor reads have their own thread: the caller picks it per action
        self.snapshot = snapshot
        self.display = display  # bridge.display.layers.Display, for the display actions
        self.stats = SubscriptionStats()
        self.last_error = ""  # of the latest error or drop, for the services protocol's STATS
        self.subscription = None
        self._reactor = reactor
        self._icons = icons
        self._intake = Intake(config, reactor, log, icons=icons)  # payload limits, rate, and the summarised log
        self._batches = _batches(config)

    def start(self) -> None:
        callback = self.on_messages if self._batches else self.on_message
        self.subscription = self.client.subscribe(self.config.subject, callback, queue=self.config.queue,
                                                  batches=self._batches)

    def stop(self) -> None:
        if self.subscription is not None:
            self.client.unsubscribe(self.subscription)
            self.subscription = None
        self._intake.problems.flush(again=False)  # the repeats counted since the last summary line

    def replace_config(self, config: SubscriptionConfig, worker: DeviceWorker) -> None:
        """Same subject and queue group, other action/args/limits: keep the NATS subscription and the counts.

        Messages already queued keep the command they were parsed into; the next message uses `config`.
        """
        self.config = config
        self.worker = worker
        self._intake.problems.flush(again=False)
        self._intake = Intake(config, self._reactor, log, icons=self._icons)
        batches = _batches(config)
        if batches != self._batches and self.subscription is not None:
            self.subscription.set_callback(self.on_messages if batches else self.on_message, batches)
        self._batches = batches

    def retire(self, totals: SubscriptionStats) -> None:
        """Removed by a reload: drain (messages the server already sent it still arrive and run);
        from now on count into `totals`, which already holds what this one counted, so the queued
        messages' outcomes stay visible."""
        if self.subscription is not None:
            subject = self.config.subject
            self.subscription.drain().addErrback(
                lambda failure: log.warn("draining {subject} after a reload: {error}", subject=subject,
                                         error=failure.getErrorMessage()))
            self.subscription = None
        totals.add(self.stats)
        self.stats = totals

    def on_messages(self, msgs: list) -> None:
        """The run of this subscription's messages that one read brought, for an action that batches."""
        self.stats.received += len(msgs)
        received_at = time.monotonic_ns()
        command_args = self._intake.command_args
        calls, sizes, subjects, replies = [], [], [], []
        for msg in msgs:
            payload = msg.payload
            try:
                calls.append(command_args(payload))
            except Exception as error:  # a bad payload, the rate, or a bug: it costs this message only
                self._finished((msg.subject, msg.reply, received_at), False, error)
                continue
            sizes.append(len(payload))
            subjects.append(msg.subject)
            replies.append(msg.reply)
        if calls:
            config = self.config
            self.worker.enqueue_batch(self, config.action, calls, sizes, config.pending_limit, config.pending_bytes,
                                      self._batch_finished, (subjects, replies if any(replies) else None, received_at))

    def _batch_finished(self, context, indices, ok: bool, value: Any) -> None:
        subjects, replies, received_at = context
        stats = self.stats
        stats.processing_ns += (time.monotonic_ns() - received_at) * len(indices)
        if not ok:
            for index in indices:
                self._settle(subjects[index], replies and replies[index], False, value)
            return
        if not value and replies is None:
            stats.applied += len(indices)
            return
        failed = dict(value)
        for index in indices:
            error = failed.get(index)
            self._settle(subjects[index], replies and replies[index], error is None, error)

    def on_message(self, msg) -> None:
        stats = self.stats
        stats.received += 1
        # Only the subjects are kept while the command waits, not the message and its payload.
        context = (msg.subject, msg.reply, time.monotonic_ns())
        try:
            command = self._intake.command(msg.payload)
        except Exception as error:  # a bad payload, the rate, or a bug: it costs this message only
            self._finished(context, False, error)
            return
        if is_display_action(command.action):
            try:
                result = run_on_display(self.display, command)
            except ValueError as error:  # DisplayRefused: the queue is full, an unknown id, too many apps
                self._finished(context, False, error)
                return
            self._finished(context, True, result)
            return
        worker = self.worker
        if command.action == "get_pixels" and worker.idle:
            # Nothing runs or waits, so the display is settled: read it here and skip two thread hops.
            self._finished(context, True, self.snapshot())
            return
        config = self.config
        worker.enqueue(self, command, config.pending_limit, config.overflow, self._finished, context,
                       len(msg.payload), config.pending_bytes)

    def _finished(self, context, ok: bool, result: Any) -> None:
        subject, reply, received_at = context
        self.stats.processing_ns += time.monotonic_ns() - received_at
        self._settle(subject, reply, ok, result)

    def _settle(self, subject: str, reply: str | None, ok: bool, result: Any) -> None:
        """Count one message's outcome, log it if it was not applied, and reply."""
        stats = self.stats
        if ok:
            stats.applied += 1
            if reply:
                self._reply(reply, result)
            return
        if isinstance(result, Dropped):
            stats.dropped += 1
        else:
            stats.errors += 1
        self.last_error = str(result)
        self._intake.not_applied(subject, result)
        self._reply(reply, result)

    def _reply(self, reply, result: Any) -> None:
        if not reply:
            return
        try:
            headers = service_error_headers(result) if isinstance(result, BaseException) else None
            self.client.publish(reply, reply_payload(result), headers=headers)
        except NatsError as error:
            log.warn("could not reply on {reply}: {error}", reply=reply, error=str(error))

    @property
    def pending(self) -> int:
        return self.worker.pending(self)

    def describe(self) -> str:
        return f"subscription {self.config.subject} -> {self.config.action}"

    def info(self) -> dict:
        stats = self.stats
        return {
            "subject": self.config.subject,
            "action": self.config.action,
            "received": stats.received,
            "applied": stats.applied,
            "errors": stats.errors,
            "dropped": stats.dropped,
            "pending": self.pending,
            "last_error": self.last_error,  # the reason behind the latest error or drop
        }


def run_on_display(display, command: Command) -> Any:
    """A display action's command on the display layer (reactor thread): the reply's data, or None
    for a plain {"ok": true}; DisplayRefused (a ValueError) when the display refuses it."""
    value = command.args[0]
    if command.action == "notify":
        accepted = display.notify(value)
        return {"ok": True, "id": accepted.id, "position": accepted.position}
    if command.action == "dismiss":
        return {"ok": True, "dismissed": display.dismiss(value)}
    if command.action == "indicator":
        if isinstance(value, IndicatorOff):
            display.clear_indicator(value.number)
        else:
            display.set_indicator(value)
        return None
    if isinstance(value, AppRemoval):
        return {"ok": True, "removed": display.remove_app(value.name)}
    display.set_app(value)
    return None


def _batches(config: SubscriptionConfig) -> bool:
    return config.overflow != "latest" and is_batchable(config.action)


class ReloadPlan(NamedTuple):
    kept: list  # running items whose config is unchanged
    replaced: list  # (running item, new config): same subject and queue group, keep the NATS subscription
    added: list  # configs to subscribe
    removed: list  # running items to retire


def plan_reload(running: Sequence[ActionSubscription], wanted: Sequence[SubscriptionConfig]) -> ReloadPlan:
    """Match running subscriptions to the wanted configs one to one: first identical configs,
    then the same subject, queue group and action, then the same subject and queue group."""
    left = list(running)
    open_configs = list(wanted)
    kept, replaced = [], []
    for same in (
        lambda item, config: item.config == config,
        lambda item, config: (item.config.subject, item.config.queue, item.config.action)
        == (config.subject, config.queue, config.action),
        lambda item, config: (item.config.subject, item.config.queue) == (config.subject, config.queue),
    ):
        for item in list(left):
            config = next((config for config in open_configs if same(item, config)), None)
            if config is None:
                continue
            left.remove(item)
            open_configs.remove(config)
            if item.config == config:
                kept.append(item)
            else:
                replaced.append((item, config))
    return ReloadPlan(kept, replaced, open_configs, left)
