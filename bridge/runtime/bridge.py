"""The running bridge: NATS subjects in, device actions out; sensor readings out on NATS.

Built from a validated `BridgeConfig`; owns one NATS client, one device and that device's two
serial workers (display, sensors), and the lifecycle (`BridgeState`). The parts it runs are
given only what they use: `ActionSubscription` (bridge/runtime/subscriptions.py), `SensorPublication`
(bridge/runtime/publications.py), `HangWatchdog` (bridge/runtime/watchdog.py); the JSON it publishes is built in
bridge/runtime/documents.py. Everything here runs on the reactor thread; device calls go through the workers.

    bytes -> bridge.nats.Client -> ActionSubscription -> actions.parse_command -> DeviceWorker -> thread -> reply
"""

from __future__ import annotations

import enum
import os
import socket
import time
from typing import Any, Callable

from twisted.internet import defer, task
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from bridge import __version__
from bridge.config.model import BridgeConfig, PublicationConfig, SubscriptionConfig
from bridge.config.redact import redact_url
from bridge.config.sources import file_source
from bridge.devices import open_device
from bridge.devices.worker import DeviceWorker
from bridge.fleet.status import StatusHeartbeat
from bridge.homeassistant.announcer import Announcer, send_current_readings
from bridge.homeassistant.discovery import birth_subject, discovery
from bridge.nats import Client, ClientOptions, Credentials, KeepAlive, NatsError, Reconnect
from bridge.nats.repeats import RepeatSummary
from bridge.runtime.documents import encode, info_document, status_document, utc_now
from bridge.runtime.publications import SensorPublication
from bridge.runtime.srv import Identity, ServiceResponder, check_device_id_free, endpoints_of, new_instance_id
from bridge.runtime.subscriptions import ActionSubscription, SubscriptionStats, plan_reload
from bridge.runtime.watchdog import HANG_AFTER, HangWatchdog, WatchedDevice

log = Logger(namespace="bridge")

JOYSTICK_POLL_INTERVAL = 0.05
STOP_TIMEOUT = 10.0


class NoServerReached(Exception):
    """No server took the first connection within nats.reconnect.max_attempts attempts."""


class BridgeState(enum.Enum):
    STARTING = "starting"  # opening the device, connecting, subscribing
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


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
    reconnect = nats.reconnect
    options = ClientOptions(
        servers=tuple(nats.servers),
        name=nats.name or f"bridge-{config.device.id}",
        randomize=nats.randomize,
        credentials=Credentials(user=nats.user, password=nats.password, token=nats.token,
                                nkey_seed_file=nats.nkey_seed_file, creds_file=nats.creds_file),
        tls=tls,
        reconnect=Reconnect(initial_delay=reconnect.initial_delay, max_delay=reconnect.max_delay,
                            jitter=reconnect.jitter, max_attempts=reconnect.max_attempts),
        keepalive=KeepAlive(ping_interval=nats.ping_interval, max_outstanding_pings=nats.max_outstanding_pings),
        buffer_size=nats.buffer_size,
    )
    return Client(options, reactor=reactor)


class Bridge:
    """The whole running bridge for one config file."""

    def __init__(self, config: BridgeConfig, reactor, device=None, *,
                 clock: Callable[[], float] = time.monotonic, hang_after: float = HANG_AFTER):
        self.reactor = reactor
        self.config = config
        self.device_id = config.device.id
        self.device = device
        self.clock = clock  # monotonic: a Pi without an RTC steps its wall clock at boot
        self.hang_after = hang_after
        self.state = BridgeState.STARTING
        # Display actions and sensor reads each get their own serial thread: a reading (and its
        # heartbeat) never waits behind minutes of scrolling text, and the HAT's framebuffer and
        # its I2C sensors are separate hardware.
        self.worker: DeviceWorker | None = None
        self.sensor_worker: DeviceWorker | None = None
        self.watchdog: HangWatchdog | None = None
        self.client: Client | None = None
        self.subscriptions: list[ActionSubscription] = []
        self.removed_subscriptions = SubscriptionStats()  # what reloads removed, and their queued messages since
        self._retiring: list[ActionSubscription] = []  # removed ones that may still have messages queued
        self.publications: list[SensorPublication] = []
        self.readings: dict[str, dict] = {}
        self.started_at = clock()
        self.instance_id = new_instance_id()  # the services protocol's id: one per process, not per device
        self.started_time = utc_now()
        self.service: ServiceResponder | None = None
        self._device_id_checked = False  # no status is published before: it would speak for another bridge
        self.bad_requests = 0
        self._bad_requests_log = RepeatSummary(
            log, "{n} info request(s) could not be answered (latest reply subject {reply!r}: {error})", reactor
        )
        self._joystick_loop: task.LoopingCall | None = None
        self.heartbeat = StatusHeartbeat(self._publish_status_if_connected, reactor, config.nats.status_interval)
        self._info_subscription = None
        self.gave_up = False  # the client stopped reconnecting (nats.reconnect.max_attempts)
        self.listeners: list[Callable[[str], None]] = []  # told "connected" / "disconnected"
        self.config_origin = None  # a fleet bridge's ConfigFollower: its `info()` and `metadata()` say which revision runs
        self.homeassistant: Announcer | None = None
        self.web_url: str | None = None  # the LED web view's address once it listens: HA links the device to it

    @property
    def stopping(self) -> bool:
        return self.state in (BridgeState.STOPPING, BridgeState.STOPPED)

    @property
    def status_subject(self) -> str:
        return f"bridge.{self.device_id}.status"

    @property
    def info_subject(self) -> str:
        return f"bridge.{self.device_id}.info"

    @defer.inlineCallbacks
    def start(self):
        if self.device is None:
            # Opening sense-emu/sense-hat touches files and I2C: not on the reactor thread.
            self.device = yield deferToThreadPool(
                self.reactor, self.reactor.getThreadPool(), open_device, self.config.device
            )
        display = WatchedDevice(self.device, "display", self.clock)
        sensors = WatchedDevice(self.device, "sensors", self.clock)
        self.worker = DeviceWorker(display, self.reactor, role="display")
        self.worker.start()
        self.sensor_worker = DeviceWorker(sensors, self.reactor, role="sensors")
        self.sensor_worker.start()
        self._sensor_device = sensors
        self.watchdog = HangWatchdog([display, sensors], self.reactor, self._on_hangs_changed,
                                     hang_after=self.hang_after, clock=self.clock)
        self.watchdog.start()
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
        try:
            yield self.client.connect()
        except Exception as error:  # noqa: BLE001 - refused, unreachable, TLS, auth: the client said which
            if self.stopping:
                return
            self.gave_up = True
            raise NoServerReached("no NATS server took the connection (nats.reconnect.max_attempts used up); "
                                  "stopping") from error
        if self.stopping:
            return
        yield check_device_id_free(self.client, self.device_id, self.instance_id, self.reactor)
        if self.stopping:  # stopped while the check waited: not RUNNING, so the closed client is no lost server
            return
        self._device_id_checked = True
        if self.client.is_connected:
            self._publish_status()
        self.heartbeat.start()
        self._apply_subscriptions(self.config.subscriptions)
        self._apply_publications(self.config.publications)
        self._info_subscription = self.client.subscribe(self.info_subject, self._on_info_request)
        self.service = ServiceResponder(self.client, self._service_identity, lambda: endpoints_of(self.subscriptions),
                                        self.started_time)
        self.service.start(self.instance_id)
        self.homeassistant = Announcer(
            self.client, self.reactor, documents=lambda: discovery(self.config, __version__, self.web_url),
            birth_subject=lambda: birth_subject(self.config) if self.config.homeassistant else None,
            send_states=self._send_home_assistant_states)
        self.homeassistant.apply()
        self.state = BridgeState.RUNNING
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

    def _worker_for(self, config: SubscriptionConfig) -> DeviceWorker:
        return self.sensor_worker if config.action == "read_sensors" else self.worker

    def _new_subscription(self, config: SubscriptionConfig) -> ActionSubscription:
        return ActionSubscription(config, self.client, self._worker_for(config), self.device.snapshot, self.reactor)

    def _apply_subscriptions(self, wanted) -> None:
        """Atomic for every message: a subscription whose subject and queue group stay keeps its
        NATS subscription (and counts) and only takes the new config; new subjects are subscribed
        before removed ones are unsubscribed; queued messages of removed ones still run and reply,
        counted in `removed_subscriptions`."""
        plan = plan_reload(self.subscriptions, wanted)
        by_config: list[tuple[SubscriptionConfig, ActionSubscription]] = [(item.config, item) for item in plan.kept]
        self._retiring = [item for item in self._retiring if item.pending]
        for item, config in plan.replaced:
            before = item.describe()
            item.replace_config(config, self._worker_for(config))
            by_config.append((config, item))
            log.info("{before}: now {config}", before=before, config=_describe_change(config))
        for config in plan.added:
            item = self._new_subscription(config)
            item.start()
            by_config.append((config, item))
            log.info("started {item}", item=item.describe())
        for item in plan.removed:
            item.retire(self.removed_subscriptions)
            self._retiring.append(item)
            log.info("stopped {item}", item=item.describe())
        items = [item for _, item in by_config]
        self.subscriptions = [next(item for item in items if item.config == config) for config in wanted]

    def _apply_publications(self, wanted) -> None:
        """Stop what is no longer wanted, start what is new, keep (and keep counting) the rest."""
        kept, removed = [], {}
        for item in self.publications:
            if item.config in wanted:
                kept.append(item)
            else:
                item.stop()
                removed[item.config.subject, item.config.sensor] = item
                log.info("stopped {item}", item=item.describe())
        kept_configs = [item.config for item in kept]
        for config in wanted:
            if config not in kept_configs:
                item = self._new_publication(config)
                if (config.subject, config.sensor) in removed:
                    item.adopt_state(removed[config.subject, config.sensor])
                item.start()
                kept.append(item)
                log.info("started {item}", item=item.describe())
        self.publications = kept
        self._update_joystick_loop()

    def _read_sensor(self, sensor: str) -> defer.Deferred:
        return self.sensor_worker.call(self._sensor_device.read, sensor)

    def _read_sensors(self, sensors) -> defer.Deferred:
        return self.sensor_worker.call(self._sensor_device.read_many, sensors)

    def _send_home_assistant_states(self) -> None:
        self._publish_status_if_connected()
        send_current_readings(self.publications)

    def _new_publication(self, config: PublicationConfig) -> SensorPublication:
        return SensorPublication(
            config,
            device_id=self.device_id,
            read=self._read_sensor,
            read_many=self._read_sensors,
            publish=self.client.publish,
            reactor=self.reactor,
            clock=self.clock,
            record=self._record_reading,
        )

    def _record_reading(self, sensor: str, value: Any, unit: str | None) -> None:
        self.readings[sensor] = {"value": value, "unit": unit, "time": utc_now()}

    @property
    def joystick_publications(self) -> list[SensorPublication]:
        return [p for p in self.publications if p.config.sensor == "joystick"]

    def _update_joystick_loop(self) -> None:
        wanted = bool(self.joystick_publications) and not self.stopping
        if wanted and self._joystick_loop is None:
            self._joystick_loop = task.LoopingCall(self._poll_joystick)
            self._joystick_loop.clock = self.reactor
            self._joystick_loop.start(JOYSTICK_POLL_INTERVAL).addErrback(
                lambda failure: log.failure("joystick polling stopped", failure)
            )
        elif not wanted and self._joystick_loop is not None:
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
            self._record_reading("joystick", value, None)
            for publication in self.joystick_publications:
                publication.publish(value, None)

    def reload(self, new_config: BridgeConfig) -> None:
        """Apply a changed config without dropping the connection (SIGHUP)."""
        if self.state is not BridgeState.RUNNING:
            log.warn("reload ignored: the bridge is {state}",
                     state="still starting" if self.state is BridgeState.STARTING else self.state.value)
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
            fleet=self.config.fleet,
            homeassistant=new_config.homeassistant,
        )
        if self.homeassistant is not None:
            self.homeassistant.apply()
        log.info(
            "reloaded {source}: {subs} subscriptions, {pubs} publications",
            source=new_config.source,
            subs=len(self.subscriptions),
            pubs=len(self.publications),
        )

    # -- status and info -----------------------------------------------------------------

    def _publish_status(self, status: str | None = None) -> None:
        hung = self.watchdog.hung if self.watchdog else []
        if status is None:
            status = "degraded" if hung else "online"
        document = status_document(self.device_id, status, __version__, hung if status != "offline" else (),
                                   config=self._config_source())
        self.client.publish(self.status_subject, encode(document))

    def _on_hangs_changed(self, hung: list) -> None:
        self._publish_status_if_connected()

    def _publish_status_if_connected(self) -> None:
        if self.client is not None and self.client.is_connected and not self.stopping:
            try:
                self._publish_status()
            except NatsError as error:
                log.warn("could not publish the status: {error}", error=str(error))

    def _on_connected(self, *_) -> None:
        log.info("connected to {url}", url=self.client.connected_url)
        if self._device_id_checked:
            self._publish_status()
            if self.homeassistant is not None:
                self.homeassistant.connected()
        for listener in list(self.listeners):
            listener("connected")

    def _on_disconnected(self, *_) -> None:
        if not self.stopping:
            log.warn("disconnected from NATS; reconnecting")
        for listener in list(self.listeners):
            listener("disconnected")

    def _on_client_closed(self, *_) -> None:
        if self.state is not BridgeState.RUNNING:
            return  # our own stop, or a failed first connect that start() reports
        log.error("gave up reconnecting to NATS after nats.reconnect.max_attempts attempts; stopping")
        self.gave_up = True
        self.reactor.stop()

    def _removed_info(self) -> dict:
        self._retiring = [item for item in self._retiring if item.pending]
        stats = self.removed_subscriptions
        return {
            "received": stats.received,
            "applied": stats.applied,
            "errors": stats.errors,
            "dropped": stats.dropped,
            "pending": sum(item.pending for item in self._retiring),
        }

    def info(self) -> dict:
        document = info_document(
            device_id=self.device_id,
            driver=self.config.device.driver,
            version=__version__,
            state=self.state.value,
            uptime=self.clock() - self.started_at,
            server=self.client.connected_url if self.client else None,
            connected=bool(self.client and self.client.is_connected),
            hung=self.watchdog.hung if self.watchdog else [],
            subscriptions=[s.info() for s in self.subscriptions],
            removed_subscriptions=self._removed_info(),
            publications=[p.info() for p in self.publications],
            bad_requests=self.bad_requests,
        )
        if self.config_origin is not None:
            document["config"] = self.config_origin.info()
        return document

    def _service_identity(self) -> Identity:
        url = self.client.connected_url if self.client else None
        metadata = {
            "device": self.device_id,
            "driver": self.config.device.driver,
            "host": socket.gethostname(),
            "config": self._config_source(),
            "server": redact_url(url) if url else "",
        }
        if self.config_origin is not None:
            metadata.update(self.config_origin.metadata())
        return Identity(self.instance_id, __version__, metadata)

    def _config_source(self) -> str:
        """`$SRV` metadata `config`: the followed revision, or the file."""
        if self.config_origin is not None:
            return self.config_origin.metadata()["config"]
        return file_source(os.path.abspath(self.config.source))

    def _on_info_request(self, msg) -> None:
        if not msg.reply:
            return
        try:
            self.client.publish(msg.reply, encode(self.info()))
        except NatsError as error:  # e.g. a wildcard reply subject: a bad request, not a crash
            self.bad_requests += 1
            self._bad_requests_log.add(reply=msg.reply, error=str(error))

    # -- shutdown ------------------------------------------------------------------------

    @defer.inlineCallbacks
    def stop(self, timeout: float = STOP_TIMEOUT):
        """Graceful stop: take no more messages, let the current action finish, say offline, close."""
        log.info("bridge {device} stopping", device=self.device_id)
        self.state = BridgeState.STOPPING
        if self.homeassistant is not None:
            self.homeassistant.stop()
        for publication in self.publications:
            publication.stop()
        self.heartbeat.stop()
        self._update_joystick_loop()
        if self.watchdog is not None:
            self.watchdog.stop()
        self._bad_requests_log.flush(again=False)
        if self.client is not None:
            for subscription in self.subscriptions:
                subscription.stop()
            if self._info_subscription is not None:
                self.client.unsubscribe(self._info_subscription)
            if self.service is not None:
                self.service.stop()
        workers = [w for w in (self.worker, self.sensor_worker) if w is not None]
        finished = yield defer.gatherResults([w.stop(timeout) for w in workers])
        if self.client is not None:
            if self.client.is_connected and self._device_id_checked:
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
        self.state = BridgeState.STOPPED
        log.info("bridge {device} stopped", device=self.device_id)


def _describe_change(config: SubscriptionConfig) -> str:
    return f"{config.action} with args {dict(config.args)}, pending_limit {config.pending_limit}, overflow {config.overflow}"
