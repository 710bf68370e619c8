"""Home Assistant sees every Pi: MQTT discovery through nats-server's own MQTT listener.

`discovery` builds HA's discovery documents from the typed config (pure); `announcer` publishes
them on NATS at the moments HA needs them. The bridge holds no MQTT code: nats-server maps topic
`a/b` to subject `a.b` both ways.
"""
