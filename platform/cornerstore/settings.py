"""One settings object, read from the environment (prefix ``CORNERSTORE_``) and ``.env``."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PACKAGE_DIR = Path(__file__).resolve().parent


def _default_policy_dir() -> Path:
    # A wheel carries the policies inside the package; an editable install
    # reads them from the repository's top-level policies/ folder.
    packaged = _PACKAGE_DIR / "_policies"
    return packaged if packaged.is_dir() else _PACKAGE_DIR.parent.parent / "policies"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class KeyProviderKind(StrEnum):
    file = "file"
    pkcs11 = "pkcs11"


class TraceExporter(StrEnum):
    none = "none"
    console = "console"
    otlp = "otlp"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CORNERSTORE_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Environment = Environment.development
    data_dir: Path = Path("./cornerstore-data")
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL. Defaults to an SQLite file in the data dir.",
    )
    master_key_file: Path | None = Field(
        default=None, description="Defaults to master.key in the data dir."
    )
    key_store_file: Path | None = Field(
        default=None,
        description="The shops' key-encryption keys (file provider). Defaults to "
        "shop-keys.db beside the master key file.",
    )
    key_provider: KeyProviderKind = Field(
        default=KeyProviderKind.file,
        description="Where master and shop key-encryption keys live: a local file, or an "
        "HSM through PKCS#11.",
    )
    pkcs11_library: Path | None = Field(default=None, description="The PKCS#11 module (.so).")
    pkcs11_token_label: str | None = None
    pkcs11_pin: SecretStr | None = None
    key_cache_size: int = Field(default=4096, ge=1, description="Unwrapped data keys kept.")
    key_cache_ttl_seconds: float = Field(
        default=300.0, gt=0, description="How long an unwrapped data key stays in memory."
    )
    policy_dir: Path = Field(default_factory=_default_policy_dir)
    audit_log_origin: str = Field(
        default="cornerstore.local/audit",
        pattern=r"^[^\s+]+$",
        description="The audit log's name in its signed checkpoints (use your hub's host name).",
    )
    audit_signing_key_file: Path | None = Field(
        default=None, description="Ed25519 checkpoint-signing keys. Defaults to the data dir."
    )
    receipt_issuer: str = Field(
        default="https://cornerstore.local",
        description="Who consent receipts say issued them (the iss claim): your hub's URL.",
    )
    receipt_signing_key_file: Path | None = Field(
        default=None, description="Ed25519 consent-receipt signing keys. Defaults to the data dir."
    )
    webhook_key_file: Path | None = Field(
        default=None,
        description="The key webhook secrets are derived from. Defaults to the data dir.",
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, description="Deliveries of one event before it is marked failed."
    )
    webhook_backoff_seconds: float = Field(
        default=2.0, gt=0, description="The first retry's delay; each later one doubles it."
    )
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    rate_consent_requests_per_day: int | None = Field(
        default=10,
        ge=1,
        description="Consent requests one consumer may send one shop in a UTC day "
        "(null: no limit).",
    )
    rate_refusals_per_minute: int | None = Field(
        default=60,
        ge=1,
        description="Refused requests about shops one principal may make in a minute, "
        "before it is answered 429 (null: no limit).",
    )
    rate_failed_logins_per_minute: int | None = Field(
        default=30,
        ge=1,
        description="Failed authentications from one client address in a minute, "
        "before they are answered 429 (null: no limit).",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where people reach the hub: sign-in links start with it.",
    )
    sign_in_link_valid_for: timedelta = Field(
        default=timedelta(minutes=15),
        gt=timedelta(0),
        le=timedelta(days=7),
        description="How long a sign-in link may wait to be opened (ISO 8601 duration).",
    )
    session_idle_timeout: timedelta = Field(
        default=timedelta(days=3),
        gt=timedelta(0),
        description="A web session unused this long is over.",
    )
    session_absolute_timeout: timedelta = Field(
        default=timedelta(days=30),
        gt=timedelta(0),
        description="A web session is over this long after it began, however used.",
    )
    webhook_private_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (names or addresses) webhooks may reach although they are "
        "loopback, private or link-local: for a consumer on your own machine while "
        "developing. Refused in production.",
    )
    expiry_record_interval_seconds: float | None = Field(
        default=1.0,
        gt=0,
        description="How often lapsed consents are recorded as versions and told to their "
        "consumers (reads stop at the instant regardless); unset to leave it to another process.",
    )
    checkpoint_interval_seconds: float = Field(
        default=0.25, gt=0, description="How often a grown audit log gets a signed checkpoint."
    )
    rollup_interval_seconds: float | None = Field(
        default=2.0,
        gt=0,
        description="How often changed weeks of shops' sales are rolled up again for analytics "
        "across shops; unset to leave it to another process.",
    )
    daily_count_interval_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often new audit entries are added to the per-day counts the console's "
        "charts draw (charts are exact regardless: newer entries are counted as they are read).",
    )
    trace_exporter: TraceExporter = TraceExporter.none
    otlp_endpoint: str | None = None
    page_size_default: int = Field(default=500, ge=1, le=5000)
    page_size_max: int = Field(default=5000, ge=1)
    ingest_max_records: int = Field(default=10_000, ge=1)
    nats_url: SecretStr | None = Field(
        default=None,
        description="The NATS server with JetStream that push connectors publish to "
        "(nats://host:4222, with the worker's credentials if it needs them); unset, there "
        "is no ingest stream.",
    )
    ingest_stream: str = Field(
        default="CORNERSTORE_INGEST",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The JetStream stream holding cornerstore.ingest.<shop_id>.<category>.",
    )
    ingest_dead_letter_stream: str = Field(
        default="CORNERSTORE_INGEST_DEAD",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Where a message goes after ingest_max_deliver failed attempts.",
    )
    ingest_duplicate_window: timedelta = Field(
        default=timedelta(minutes=10),
        gt=timedelta(0),
        description="A message published again with the same Nats-Msg-Id within this is dropped.",
    )
    ingest_stream_max_bytes: int = Field(
        default=1024**3,
        ge=1024 * 1024,
        description="What the stream buffers while the hub is behind; when full, publishers "
        "are refused (and retry) rather than anything dropped.",
    )
    ingest_max_deliver: int = Field(
        default=5, ge=1, description="Attempts at a failing message before it is dead-lettered."
    )
    ingest_backoff_seconds: float = Field(
        default=1.0, gt=0, description="The first retry's delay; each later one doubles it."
    )
    ingest_ack_wait_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A message a worker took and did not answer in this long (it stopped) "
        "is delivered again.",
    )
    ingest_fetch_batch: int = Field(
        default=256, ge=1, le=10_000, description="Messages the worker takes and commits at once."
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1, description="Larger request bodies are refused (413)."
    )
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _page_sizes_agree(self) -> Settings:
        if self.page_size_default > self.page_size_max:
            raise ValueError(
                "CORNERSTORE_PAGE_SIZE_DEFAULT must not exceed CORNERSTORE_PAGE_SIZE_MAX"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_explicit_storage(self) -> Settings:
        # Outside development the hub must not quietly fall back to demo-style
        # defaults: an operator names the database and the master key file.
        if self.environment is Environment.production:
            missing = [
                name
                for name, value in (
                    ("CORNERSTORE_DATABASE_URL", self.database_url),
                    ("CORNERSTORE_MASTER_KEY_FILE", self.master_key_file),
                )
                if value is None
                and not (
                    name == "CORNERSTORE_MASTER_KEY_FILE"
                    and self.key_provider is KeyProviderKind.pkcs11
                )
            ]
            if missing:
                raise ValueError(f"production needs {', '.join(missing)} to be set explicitly")
            if self.webhook_private_hosts:
                raise ValueError(
                    "CORNERSTORE_WEBHOOK_PRIVATE_HOSTS is for development: in production "
                    "webhooks reach only the public internet"
                )
        return self

    @model_validator(mode="after")
    def _pkcs11_is_complete(self) -> Settings:
        if self.key_provider is KeyProviderKind.pkcs11:
            missing = [
                name
                for name, value in (
                    ("CORNERSTORE_PKCS11_LIBRARY", self.pkcs11_library),
                    ("CORNERSTORE_PKCS11_TOKEN_LABEL", self.pkcs11_token_label),
                    ("CORNERSTORE_PKCS11_PIN", self.pkcs11_pin),
                )
                if value is None
            ]
            if missing:
                raise ValueError(f"the pkcs11 key provider needs {', '.join(missing)}")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'cornerstore.db').resolve()}"

    @property
    def master_key_path(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"

    @property
    def audit_signing_key_path(self) -> Path:
        return self.audit_signing_key_file or self.data_dir / "audit-signing.key"

    @property
    def receipt_signing_key_path(self) -> Path:
        return self.receipt_signing_key_file or self.data_dir / "receipt-signing.key"

    @property
    def webhook_key_path(self) -> Path:
        return self.webhook_key_file or self.data_dir / "webhook.key"

    @property
    def key_store_path(self) -> Path:
        return self.key_store_file or self.master_key_path.parent / "shop-keys.db"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
