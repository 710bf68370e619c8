"""The running bridge: NATS subjects in, device actions out; sensor readings out on NATS.

Built from a validated `BridgeConfig`; owns one NATS client, one device and that device's serial
worker. Everything here runs on the reactor thread; device calls go through the worker.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from twisted.internet import defer, task
from twisted.logger import Logger

from bridge import __version__
from bridge.actions import reply_payload
from bridge.config.model import BridgeConfig, PublicationConfig, SubscriptionConfig
from bridge.devices import open_device
from bridge.devices.worker import DeviceWorker, Dropped
from bridge.intake import Intake
from bridge.nats import Client, NatsError

log = Logger(namespace="bridge")

JOYSTICK_POLL_INTERVAL = 0.05
STOP_TIMEOUT = 10.0


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def client_for(config: BridgeConfig, reactor=None) -> Client:
    """Map the config's `nats:` block onto the reusable client's options."""
    nats = config.nats
    tls = None
    if nats.tls is not None:
        tls = {
            "ca_file": nats.tls.ca_file,
            "cert_file": nats.tls.cert_file,
            "key_file": nats.tls.key_file,
            "verify": nats.tls.verify,
            "handshake_first": nats.tls.handshake_first,
        }
    return Client(
        servers=list(nats.servers),
        name=nats.name or f"bridge-{config.device.id}",
        randomize=nats.randomize,
        user=nats.user,
        password=nats.password,
        token=nats.token,
        nkey_seed_file=nats.nkey_seed_file,
        creds_file=nats.creds_file,
        tls=tls,
        initial_delay=nats.reconnect.initial_delay,
        max_delay=nats.reconnect.max_delay,
        jitter=nats.reconnect.jitter,
        max_attempts=nats.reconnect.max_attempts,
        ping_interval=nats.ping_interval,
        max_outstanding_pings=nats.max_outstanding_pings,
        buffer_size=nats.buffer_size,
        reactor=reactor,
    )


@dataclass
class SubscriptionStats:
    received: int = 0
    applied: int = 0
    errors: int = 0
    dropped: int = 0


class ActionSubscription:
    """One `subscriptions:` entry: turns each message into a device command and replies."""

    def __init__(self, bridge: "Bridge", config: SubscriptionConfig):
        self.bridge = bridge
        self.config = config
        self.stats = SubscriptionStats()
        self.subscription = None
        self.worker: DeviceWorker | None = None

    def start(self) -> None:
        # Chosen once here, not per message: sensor reads have their own thread.
        self.worker = self.bridge.sensor_worker if self.config.action == "read_sensors" else self.bridge.worker
        self.subscription = self.bridge.client.subscribe(
            self.config.subject, self.on_message, queue=self.config.queue
        )

    def stop(self) -> None:
        if self.subscription is not None:
            self.bridge.client.unsubscribe(self.subscription)
            self.subscription = None

    def on_message(self, msg) -> None:
        stats = self.stats
        stats.received += 1
        intake = getattr(self, "_intake", None)
        if intake is None:  # made here rather than in __init__ (bridge/intake.py)
            intake = self._intake = Intake(self.config, self.bridge.reactor, log)
        # Only the subjects are kept while the command waits, not the message and its payload.
        context = (msg.subject, msg.reply)
        try:
            command = intake.command(msg.payload)
        except Exception as error:  # a bad payload, the rate, or a bug: it costs this message only
            self._finished(context, False, error)
            return
        worker = self.worker
        if command.action == "get_pixels" and worker.idle:
            # Nothing runs or waits, so the display is settled: read it here and skip two thread hops.
            self._finished(context, True, self.bridge.device.snapshot())
            return
        config = self.config
        worker.enqueue(self, command, config.pending_limit, config.overflow, self._finished, context,
                       len(msg.payload), config.pending_bytes)

    def _finished(self, context, ok: bool, result: Any) -> None:
        subject, reply = context
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
        self._intake.not_applied(subject, result)
        self._reply(reply, result)

    def _reply(self, reply, result: Any) -> None:
        if not reply:
            return
        try:
            self.bridge.client.publish(reply, reply_payload(result))
        except NatsError as error:
            log.warn("could not reply on {reply}: {error}", reply=reply, error=str(error))

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
            "pending": self.bridge.worker.pending(self) if self.bridge.worker else 0,
        }


def moved_enough(previous: Any, current: Any, threshold: float, angles: bool = False) -> bool:
    """Deadband: has any component of the reading moved by at least `threshold`?

    With `angles` (orientation, in degrees) 359.9 -> 0.1 is a move of 0.2, not 359.8.
    """
    if isinstance(current, dict) and isinstance(previous, dict):
        return any(moved_enough(previous.get(key), value, threshold, angles) for key, value in current.items())
    if isinstance(current, (int, float)) and isinstance(previous, (int, float)):
        moved = abs(current - previous)
        if angles:
            moved %= 360
            moved = min(moved, 360 - moved)
        return moved >= threshold
    return current != previous


class SensorPublication:
    """One `publications:` entry: polls a sensor (or forwards joystick events) onto a subject."""

    def __init__(self, bridge: "Bridge", config: PublicationConfig):
        self.bridge = bridge
        self.config = config
        self.published = 0
        self.last_value: Any = None
        self.last_published_at: float | None = None
        self.loop: task.LoopingCall | None = None
        self._reading = False

    def start(self) -> None:
        if self.config.sensor == "joystick":
            self.bridge.joystick_publications.append(self)
            return
        self.loop = task.LoopingCall(self.poll)
        self.loop.clock = self.bridge.reactor
        self.loop.start(self.config.interval, now=True).addErrback(
            lambda failure: log.failure("publication {subject} stopped", failure, subject=self.config.subject)
        )

    def stop(self) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.loop = None
        if self in self.bridge.joystick_publications:
            self.bridge.joystick_publications.remove(self)

    def poll(self) -> None:
        if self._reading:  # the device is still busy with the previous read: skip, don't pile up
            return
        self._reading = True
        reading = self.bridge.sensor_worker.call(self.bridge.device.read, self.config.sensor)
        reading.addCallbacks(self.on_reading, self.on_read_error)
        reading.addErrback(lambda failure: log.failure("publishing {sensor} failed", failure, sensor=self.config.sensor))
        reading.addBoth(self._done_reading)

    def _done_reading(self, _):
        self._reading = False

    def on_read_error(self, failure) -> None:
        log.warn("reading {sensor} failed: {error}", sensor=self.config.sensor, error=failure.getErrorMessage())

    def on_reading(self, reading) -> None:
        value, unit = reading
        self.bridge.readings[self.config.sensor] = {"value": value, "unit": unit, "time": utc_now()}
        now = self.bridge.reactor.seconds()
        config = self.config
        due = self.last_published_at is None or self.last_value is None
        if not due and config.change is None:
            due = True
        if not due and moved_enough(self.last_value, value, config.change, angles=config.sensor == "orientation"):
            due = True
        if not due and config.heartbeat is not None and now - self.last_published_at >= config.heartbeat:
            due = True
        if due:
            self.publish(value, unit)
            self.last_value = value
            self.last_published_at = now

    def publish(self, value: Any, unit: str | None) -> None:
        body = {"device": self.bridge.device_id, "sensor": self.config.sensor, "value": value}
        if unit is not None:
            body["unit"] = unit
        body["time"] = utc_now()
        try:
            self.bridge.client.publish(self.config.subject, json.dumps(body).encode())
            self.published += 1
        except NatsError as error:
            log.error("could not publish {sensor} on {subject}: {error}", sensor=self.config.sensor, subject=self.config.subject, error=str(error))

    def describe(self) -> str:
        return f"publication {self.config.sensor} -> {self.config.subject}"

    def info(self) -> dict:
        return {"subject": self.config.subject, "sensor": self.config.sensor, "published": self.published}


class Bridge:
    """The whole running bridge for one config file."""

    def __init__(self, config: BridgeConfig, reactor=None, device=None):
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.config = config
        self.device_id = config.device.id
        self.device = device
        # Display actions and sensor reads each get their own serial thread: a reading (and its
        # heartbeat) never waits behind minutes of scrolling text, and the HAT's framebuffer and
        # its I2C sensors are separate hardware.
        self.worker: DeviceWorker | None = None
        self.sensor_worker: DeviceWorker | None = None
        self.client: Client | None = None
        self.subscriptions: list[ActionSubscription] = []
        self.publications: list[SensorPublication] = []
        self.joystick_publications: list[SensorPublication] = []
        self.readings: dict[str, dict] = {}
        self.started_at = time.monotonic()
        self._joystick_loop: task.LoopingCall | None = None
        self._info_subscription = None
        self.stopping = False
        self.gave_up = False  # the client stopped reconnecting (nats.reconnect.max_attempts)
        self.listeners: list[Callable[[str], None]] = []  # told "connected" / "disconnected"

    @property
    def status_subject(self) -> str:
        return f"bridge.{self.device_id}.status"

    @property
    def info_subject(self) -> str:
        return f"bridge.{self.device_id}.info"

    @defer.inlineCallbacks
    def start(self):
        if self.device is None:
            from twisted.internet.threads import deferToThreadPool

            # Opening sense-emu/sense-hat touches files and I2C: not on the reactor thread.
            self.device = yield deferToThreadPool(
                self.reactor, self.reactor.getThreadPool(), open_device, self.config.device
            )
        self.worker = DeviceWorker(self.device, self.reactor, role="display")
        self.worker.start()
        self.sensor_worker = DeviceWorker(self.device, self.reactor, role="sensors")
        self.sensor_worker.start()
        self.client = client_for(self.config, self.reactor)
        self.client.add_listener("connected", self._on_connected)
        self.client.add_listener("reconnected", self._on_connected)
        self.client.add_listener("disconnected", self._on_disconnected)
        self.client.add_listener("closed", self._on_client_closed)
        log.info(
            "bridge {device} ({driver}) connecting to {servers}",
            device=self.device_id,
            driver=self.config.device.driver,
            servers=", ".join(self.client.servers),  # without any user:password from the URLs
        )
        yield self.client.connect()
        self._apply_subscriptions(self.config.subscriptions)
        self._apply_publications(self.config.publications)
        self._info_subscription = self.client.subscribe(self.info_subject, self._on_info_request)
        try:
            yield self.client.flush()
        except NatsError as error:  # dropped right after connecting: the client resubscribes on reconnect
            log.warn("subscriptions not confirmed yet: {error}", error=str(error))
        log.info(
            "bridge {device} running: {subs} subscriptions, {pubs} publications",
            device=self.device_id,
            subs=len(self.subscriptions),
            pubs=len(self.publications),
        )

    # -- subscriptions and publications, also used by reload -----------------------------

    def _apply_subscriptions(self, wanted) -> None:
        self.subscriptions = self._reconcile(self.subscriptions, wanted, ActionSubscription)

    def _apply_publications(self, wanted) -> None:
        self.publications = self._reconcile(self.publications, wanted, SensorPublication)
        self._update_joystick_loop()

    def _reconcile(self, running: list, wanted, make) -> list:
        """Stop what is no longer wanted, start what is new, keep (and keep counting) the rest."""
        kept = []
        for item in running:
            if item.config in wanted:
                kept.append(item)
            else:
                item.stop()
                log.info("stopped {item}", item=item.describe())
        kept_configs = [item.config for item in kept]
        for config in wanted:
            if config not in kept_configs:
                item = make(self, config)
                item.start()
                kept.append(item)
                log.info("started {item}", item=item.describe())
        return kept

    def _update_joystick_loop(self) -> None:
        if self.joystick_publications and self._joystick_loop is None:
            self._joystick_loop = task.LoopingCall(self._poll_joystick)
            self._joystick_loop.clock = self.reactor
            self._joystick_loop.start(JOYSTICK_POLL_INTERVAL).addErrback(
                lambda failure: log.failure("joystick polling stopped", failure)
            )
        elif not self.joystick_publications and self._joystick_loop is not None:
            self._joystick_loop.stop()
            self._joystick_loop = None

    def _poll_joystick(self) -> None:
        # A non-blocking read of queued input events: cheap enough for the reactor thread, and it
        # must not wait behind a scrolling message on the worker.
        try:
            events = self.device.poll_joystick()
        except OSError as error:
            log.warn("reading the joystick failed: {error}", error=str(error))
            return
        for direction, action in events:
            value = {"direction": direction, "action": action}
            self.readings["joystick"] = {"value": value, "unit": None, "time": utc_now()}
            for publication in self.joystick_publications:
                publication.publish(value, None)

    def reload(self, new_config: BridgeConfig) -> None:
        """Apply a changed config without dropping the connection (SIGHUP)."""
        if self.stopping or self._info_subscription is None:
            log.warn("reload ignored: the bridge is {state}", state="stopping" if self.stopping else "still starting")
            return
        restart_needed = [
            name for name in ("device", "nats", "web") if getattr(new_config, name) != getattr(self.config, name)
        ]
        if restart_needed:
            log.warn(
                "reload: changes to {sections} need a restart; keeping the running ones",
                sections=", ".join(restart_needed),
            )
        self._apply_subscriptions(new_config.subscriptions)
        self._apply_publications(new_config.publications)
        self.config = BridgeConfig(
            device=self.config.device,
            nats=self.config.nats,
            subscriptions=new_config.subscriptions,
            publications=new_config.publications,
            web=self.config.web,
            version=new_config.version,
            source=new_config.source,
        )
        log.info(
            "reloaded {source}: {subs} subscriptions, {pubs} publications",
            source=new_config.source,
            subs=len(self.subscriptions),
            pubs=len(self.publications),
        )

    # -- status and info -----------------------------------------------------------------

    def _publish_status(self, status: str) -> None:
        body = {"device": self.device_id, "status": status, "version": __version__, "time": utc_now()}
        self.client.publish(self.status_subject, json.dumps(body).encode())

    def _on_connected(self, *_) -> None:
        log.info("connected to {url}", url=self.client.connected_url)
        self._publish_status("online")
        for listener in list(self.listeners):
            listener("connected")

    def _on_disconnected(self, *_) -> None:
        if not self.stopping:
            log.warn("disconnected from NATS; reconnecting")
        for listener in list(self.listeners):
            listener("disconnected")

    def _on_client_closed(self, *_) -> None:
        if self.stopping or self._info_subscription is None:
            return  # our own stop, or a failed first connect that start() reports
        log.error("gave up reconnecting to NATS after nats.reconnect.max_attempts attempts; stopping")
        self.gave_up = True
        self.reactor.stop()

    def info(self) -> dict:
        return {
            "device": self.device_id,
            "driver": self.config.device.driver,
            "version": __version__,
            "uptime": round(time.monotonic() - self.started_at, 3),
            "server": self.client.connected_url if self.client else None,
            "connected": bool(self.client and self.client.is_connected),
            "subscriptions": [s.info() for s in self.subscriptions],
            "publications": [p.info() for p in self.publications],
        }

    def _on_info_request(self, msg) -> None:
        if msg.reply:
            self.client.publish(msg.reply, json.dumps(self.info()).encode())

    # -- shutdown ------------------------------------------------------------------------

    @defer.inlineCallbacks
    def stop(self, timeout: float = STOP_TIMEOUT):
        """Graceful stop: take no more messages, let the current action finish, say offline, close."""
        log.info("bridge {device} stopping", device=self.device_id)
        self.stopping = True
        for publication in self.publications:
            publication.stop()
        self._update_joystick_loop()
        if self.client is not None:
            for subscription in self.subscriptions:
                subscription.stop()
            if self._info_subscription is not None:
                self.client.unsubscribe(self._info_subscription)
        workers = [w for w in (self.worker, self.sensor_worker) if w is not None]
        finished = yield defer.gatherResults([w.stop(timeout) for w in workers])
        if self.client is not None:
            if self.client.is_connected:
                try:
                    self._publish_status("offline")
                    yield self.client.flush(timeout=2.0)
                except NatsError as error:
                    log.warn("could not say offline: {error}", error=str(error))
            yield self.client.close()
        if self.device is not None:
            if all(finished):
                self.device.close()
            else:  # closing it under a running action would break that action, not stop it
                log.warn("an action was still running after {timeout}s; leaving the device to it", timeout=timeout)
        log.info("bridge {device} stopped", device=self.device_id)
