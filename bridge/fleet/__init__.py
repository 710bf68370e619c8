"""Many Pis from one config, and seeing them: a bridge follows its key in a JetStream key-value
bucket (follow.py); `BRIDGE_STATUS` keeps every device's last status (status.py); the listing
joins `$SRV` answers and those statuses (listing.py)."""
