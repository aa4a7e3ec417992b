"""The store's fixed vocabularies and bounds, apart from the stores themselves (SQLAlchemy, Argon2), so the
command line can name them in its help without loading either."""

# What the audit log records, one word per kind of change (store/audit.py writes them).
ACTIONS = (
    "sign-in",
    "sign-in-failed",
    "sign-out",
    "map-change",
    "roadmap-change",
    "change-add",
    "ingest",
    "remap",
    "quarantine-clear",
    "user-change",
    "token-create",
    "token-revoke",
    "key-create",
    "key-revoke",
    "erase",
    "suppression-lift",
    "backup",
    "restore",
)
MAX_TOKEN_DAYS = 3650  # the longest an API token may last (store/users.py refuses more)
