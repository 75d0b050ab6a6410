"""The store's tables (SQLAlchemy Core), the same for SQLite and PostgreSQL.

Timestamps are integer milliseconds since the Unix epoch (UTC): compact, fast to read
into columnar arrays, and identical on both databases. User ids are pseudonymous
(keyed HMACs made at ingest); no raw email, phone or user id is ever stored.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# "exposure": the service showed a user an experiment arm's recommendations (scene "exp:<experiment id>:<arm>",
# no item, so it never enters a history); see shoplm.marketing.experiments.
EVENT_TYPES = ("view", "click", "add_to_cart", "purchase", "search", "rate", "exposure")
ORDER_STATUSES = (
    "pending",
    "paid",
    "shipped",
    "delivered",
    "cancelled",
    "refunded",
    "returned",
    "return_requested",  # the assistant started a return; the shop sets returned/refunded on receipt
    # A separate order that takes back the goods of an earlier one (Online Retail's "C" invoices):
    # its lines are returns, while a cancelled/refunded/returned order was changed in place.
    "reversal",
)
MESSAGE_ROLES = ("customer", "agent", "assistant", "system")

items = Table(
    "items",
    metadata,
    Column("item_id", String(128), primary_key=True),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("category", Text, nullable=False, default="", doc="path, levels joined by ' > '"),
    Column("brand", String(256), nullable=False, default=""),
    Column("price", Float, nullable=True),
    Column("currency", String(8), nullable=False, default=""),
    Column("stock", Integer, nullable=True),
    Column("language", String(16), nullable=False, default=""),
    Column("attributes", Text, nullable=False, default="{}", doc="JSON object"),
    Column("content_hash", String(32), nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("user_id", String(64), primary_key=True, doc="HMAC of the shop's user id"),
    Column("email_hash", String(64), nullable=True),
    Column("phone_hash", String(64), nullable=True),
    Column("country", String(64), nullable=False, default=""),
    Column("attributes", Text, nullable=False, default="{}"),
    Column("created_ms", BigInteger, nullable=True),
    Column("content_hash", String(32), nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("item_id", String(128), nullable=True, doc="may name an item the catalog lacks yet"),
    Column("event_type", String(16), nullable=False),
    Column("scene", String(32), nullable=False, default=""),
    Column("query", Text, nullable=False, default=""),
    Column("value", Float, nullable=True, doc="rating for 'rate', amount for 'purchase'"),
    Column("ts_ms", BigInteger, nullable=False),
    Column("session_id", String(128), nullable=False, default=""),
    Column("suspected_bot", Boolean, nullable=False, default=False),
)
Index("ix_events_user_ts", events.c.user_id, events.c.ts_ms)
Index("ix_events_item", events.c.item_id)
Index("ix_events_ts", events.c.ts_ms)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("user_id", String(64), nullable=True, doc="empty for guest checkouts"),
    Column("status", String(16), nullable=False),
    Column("currency", String(8), nullable=False, default=""),
    Column("total_amount", Float, nullable=False),
    Column("country", String(64), nullable=False, default=""),
    Column("shipping_address", Text, nullable=False, default="", doc="PII inside is masked"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("content_hash", String(32), nullable=False),
)
Index("ix_orders_user", orders.c.user_id)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(128), ForeignKey("orders.order_id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("item_id", String(128), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Float, nullable=False),
)
Index("ix_order_lines_item", order_lines.c.item_id)

reviews = Table(
    "reviews",
    metadata,
    Column("review_id", String(128), primary_key=True),
    Column("item_id", String(128), nullable=False),
    Column("user_id", String(64), nullable=True),
    Column("rating", Integer, nullable=True),
    Column("text", Text, nullable=False, default=""),
    Column("language", String(16), nullable=False, default=""),
    Column("ts_ms", BigInteger, nullable=False),
)
Index("ix_reviews_item", reviews.c.item_id)

# Sentiment of each stored review (issue 12 §1), scored on ingest. Keyed by review; ``text_hash``
# lets a review whose text another review already has reuse that score (same model version).
review_sentiment = Table(
    "review_sentiment",
    metadata,
    Column("review_id", String(128), primary_key=True),
    Column("text_hash", String(64), nullable=False, doc="SHA-256 of the review text as stored"),
    Column("polarity", String(16), nullable=True, doc="positive, neutral, negative; NULL when skipped"),
    Column("p_positive", Float, nullable=True),
    Column("rating_estimate", Float, nullable=True, doc="expected 1-5 star rating"),
    Column("skipped", String(32), nullable=False, default="", doc="why not scored: empty, unsupported_language"),
    Column("model_version", String(64), nullable=False),
    Column("scored_ms", BigInteger, nullable=False),
)
Index("ix_review_sentiment_text_hash", review_sentiment.c.text_hash)

conversations = Table(
    "conversations",
    metadata,
    Column("conversation_id", String(128), primary_key=True),
    Column("user_id", String(64), nullable=True),
    Column("channel", String(32), nullable=False, default=""),
    Column("status", String(16), nullable=False, default="open"),
    Column("started_ms", BigInteger, nullable=False),
    Column("state", Text, nullable=False, default="{}", doc="JSON dialogue state"),
)

messages = Table(
    "messages",
    metadata,
    Column("message_id", String(128), primary_key=True),
    Column("conversation_id", String(128), ForeignKey("conversations.conversation_id"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("intent", String(64), nullable=False, default=""),
    Column("ts_ms", BigInteger, nullable=False),
)
Index("ix_messages_conversation", messages.c.conversation_id, messages.c.ts_ms)

# Digests of OpenAI-style chat transcripts (the messages a client sends back each time), so a
# chat UI that resends the whole history continues the stored conversation it came from.
chat_transcripts = Table(
    "chat_transcripts",
    metadata,
    Column("digest", String(64), primary_key=True, doc="SHA-256 of key id, user and the messages so far"),
    Column("conversation_id", String(128), ForeignKey("conversations.conversation_id"), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True, doc="public prefix of the key, for lookup"),
    Column("name", Text, nullable=False, default=""),
    Column("scope", String(8), nullable=False, doc="read, write or admin"),
    Column("salt", String(64), nullable=False),
    Column("key_hash", String(128), nullable=False, doc="PBKDF2-HMAC-SHA256 of the whole key; never the key"),
    Column("iterations", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger, nullable=True),
)

# Dashboard logins: a hash of the random token in the browser's cookie, never an API key.
# In the store, so that every worker process of the service knows every login.
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True, doc="SHA-256 of the cookie's token"),
    Column("key_id", String(32), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)

# What analytics jobs compute from the tables above, for serving: a job writes its whole result
# at once, and nothing it reads is changed. A report is one JSON document (segments, basket
# rules, forecasts); a user score is one number per user and kind (churn) with its reasons.
analytics_reports = Table(
    "analytics_reports",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("body", Text, nullable=False, doc="JSON"),
    Column("computed_ms", BigInteger, nullable=False),
)

user_scores = Table(
    "user_scores",
    metadata,
    Column("kind", String(32), primary_key=True, doc="what is scored, e.g. churn"),
    Column("user_id", String(64), primary_key=True),
    Column("score", Float, nullable=False),
    Column("reasons", Text, nullable=False, default="[]", doc="JSON list of readable reasons"),
    Column("details", Text, nullable=False, default="{}", doc="JSON object of the features behind the score"),
    Column("computed_ms", BigInteger, nullable=False),
)
Index("ix_user_scores_rank", user_scores.c.kind, user_scores.c.score)

# Every user's home candidate list, precomputed by the batch-scoring job (``shoplm precompute``)
# for one model version: serving answers from it while ``basis`` (a hash of the history it was
# scored from) still matches the user's history, and computes a fresh answer otherwise. The job
# replaces the whole set at once.
candidate_lists = Table(
    "candidate_lists",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("version", String(64), nullable=False, doc="the model version directory that scored it"),
    Column("basis", String(32), nullable=False, doc="hash of the history and purchases it was scored from"),
    Column("items", Text, nullable=False, doc="JSON list of recommendations (item, score, reason), best first"),
    Column("computed_ms", BigInteger, nullable=False),
)

# Alerts of every kind (fraud, opinion spikes), each stored once: its id is derived from what it
# is about (e.g. ``fraud:O123``), so a job that finds it again adds nothing. Delivery to the
# configured webhook is tracked per alert, so a crash between finding and sending loses none.
alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(160), primary_key=True, doc="KIND:SUBJECT"),
    Column("kind", String(32), nullable=False),
    Column("subject", String(128), nullable=False, doc="the order, item or category concerned"),
    Column("score", Float, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False, doc="JSON: reasons and evidence"),
    Column("created_ms", BigInteger, nullable=False),
    Column("delivered_ms", BigInteger, nullable=True, doc="when the webhook acknowledged it"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=False, default=""),
)
Index("ix_alerts_kind_created", alerts.c.kind, alerts.c.created_ms)
Index("ix_alerts_pending", alerts.c.delivered_ms, alerts.c.attempts)

# Scheduled operations (retraining, forecasts, alerts, retention): one row per run, so the last
# run, its outcome and its message survive restarts and show the same in every worker process.
job_runs = Table(
    "job_runs",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger, nullable=True, doc="null while the run is going"),
    Column("outcome", String(16), nullable=False, doc="running, ok, failed or skipped"),
    Column("message", Text, nullable=False, default=""),
)
Index("ix_job_runs_job_started", job_runs.c.job, job_runs.c.started_ms)

# Who may run scheduled jobs: one row per lease name, held by one process until it expires, so
# that of several server workers (or a server and ``shoplm scheduler``) only one runs them.
scheduler_leases = Table(
    "scheduler_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False, doc="host:pid:random of the process holding it"),
    Column("expires_ms", BigInteger, nullable=False),
)

# Admin actions (forget, export, re-key, key rotation): append-only. The repository has no update
# or delete, and triggers made with the table refuse both (see shoplm.store.audit). An entry names
# no user: ``subject_hash`` is a salted HMAC of the user id, checkable only by who holds the salt.
audit_log = Table(
    "audit_log",
    metadata,
    Column("entry_id", Integer, primary_key=True, autoincrement=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False, doc="the acting API key's id, or 'cli'"),
    Column("action", String(32), nullable=False),
    Column("subject_hash", String(64), nullable=False, default="", doc="salted HMAC of the user id; '' if none"),
    Column("details", Text, nullable=False, default="{}", doc="JSON: counts and names, never a user"),
)

# The differential-privacy budget ledger, per dataset: what has been spent (one row, changed by a
# conditional UPDATE so two releases cannot both take the last of the budget) and every release
# with its noisy answer, so an identical query over unchanged data gets the same noise back.
privacy_budgets = Table(
    "privacy_budgets",
    metadata,
    Column("dataset", String(64), primary_key=True),
    Column("spent_epsilon", Float, nullable=False, default=0.0),
    Column("updated_ms", BigInteger, nullable=False),
)

privacy_releases = Table(
    "privacy_releases",
    metadata,
    Column("release_id", String(32), primary_key=True),
    Column("dataset", String(64), nullable=False),
    Column("report", String(64), nullable=False),
    Column("query_key", String(64), nullable=False, doc="SHA-256 of the query and the exact data it read"),
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False, default=0.0),
    Column("parameters", Text, nullable=False, default="{}", doc="JSON: window, bounds"),
    Column("body", Text, nullable=False, doc="JSON: the noisy release as answered"),
    Column("key_id", String(32), nullable=True, doc="the acting API key's id over HTTP; empty from the CLI"),
    Column("created_ms", BigInteger, nullable=False),
)
Index("ux_privacy_releases_query", privacy_releases.c.dataset, privacy_releases.c.query_key, unique=True)
Index("ix_privacy_releases_created", privacy_releases.c.dataset, privacy_releases.c.created_ms)

# A/B tests of recommendation strategies (shoplm.app.experiments): one row per experiment. Exposures
# and outcomes are events (type "exposure", scene "exp:<experiment id>:<arm>"), not rows here.
experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", String(16), primary_key=True),
    Column("name", Text, nullable=False),
    Column("scene", String(32), nullable=False, doc="the recommendation scene it runs on"),
    Column("arms", Text, nullable=False, doc="JSON list of {name, strategy, weight}; the first is the control"),
    Column("metric", String(16), nullable=False, default="ctr", doc="primary metric: ctr or conversion"),
    Column("status", String(16), nullable=False, doc="running or stopped"),
    Column("created_ms", BigInteger, nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("stop_ms", BigInteger, nullable=True),
)
Index("ix_experiments_status", experiments.c.status, experiments.c.scene)

# Impression logs (ingest kind "impressions"): one row per item shown in a request, with what the
# user did with it. Append-only; the CTR models (shoplm.marketing.ctr) train on them.
impressions = Table(
    "impressions",
    metadata,
    Column("request_id", String(128), primary_key=True),
    Column("position", Integer, primary_key=True, doc="slot on the page, 0 = first"),
    Column("user_id", String(64), nullable=False),
    Column("item_id", String(128), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("scene", String(32), nullable=False, default=""),
    Column("clicked", Boolean, nullable=False, default=False),
    Column("added_to_cart", Boolean, nullable=False, default=False),
    Column("creative", Integer, nullable=True, doc="the ad-copy variant shown, when known"),
)
Index("ix_impressions_ts", impressions.c.ts_ms)
Index("ix_impressions_item", impressions.c.item_id)
Index("ix_impressions_user", impressions.c.user_id)

TABLES = {t.name: t for t in metadata.sorted_tables}
