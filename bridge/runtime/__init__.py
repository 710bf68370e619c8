"""The long-running bridge: what `bridge run` keeps alive.

A message flows `Client → ActionSubscription (subscriptions) → intake → DeviceWorker → device`,
and its reply back; sensor readings flow `SensorPublication (publications) → Client`. `Bridge`
(bridge.py) owns them, the `$SRV` responder (srv.py) describes them, the watchdog watches the
device, and documents.py builds every JSON document the bridge publishes. process.py runs the bridge,
its web view, systemd's notifications and a fleet bridge's config follower as one Twisted service tree.
"""
