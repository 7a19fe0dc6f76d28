"""The rental manager's settings: the kernel's plus its own, under the RENTAL_ prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict
from quartet_shared.settings import KernelSettings


class RentalSettings(KernelSettings):
    """Where the rental manager listens, how it signs tokens, bills tenants and relays its outbox."""

    model_config = SettingsConfigDict(env_prefix="RENTAL_", extra="ignore", env_file=".env", populate_by_name=True)

    service_name: str = "rental-manager"
    # Loopback unless told otherwise: containers and pods set <PREFIX>HOST=0.0.0.0 themselves.
    host: str = "127.0.0.1"
    port: int = Field(8003, ge=1, le=65535)
    topic_prefix: str = Field("", description="Prefix of the rental topics (tests keep theirs apart with it).")

    jwt_secret: SecretStr | None = Field(
        None, description="HMAC key for access tokens; unset: a random key kept in .local/data (local runs only)."
    )
    jwt_secret_file: Path = Path(".local/data/rental-manager.jwt-key")
    token_ttl_s: int = Field(3600, ge=60, le=30 * 24 * 3600)
    argon2_time_cost: int = Field(2, ge=1, le=10)
    argon2_memory_kib: int = Field(19_456, ge=1024, le=1_048_576, description="OWASP's 19 MiB minimum by default.")
    admin_email: str | None = Field(None, description="Create this admin at start-up if no user has the address.")
    admin_password: SecretStr | None = None

    login_failures_per_account: int = Field(
        5, ge=1, le=1000, description="Failed sign-ins an account may have in the window before it is refused (429)."
    )
    login_failures_per_address: int = Field(
        20, ge=1, le=100_000, description="Failed sign-ins one client address may have in the window (429 beyond)."
    )
    login_window_s: int = Field(300, ge=1, le=86_400, description="The moving window failed sign-ins count in.")

    search_cache_ttl_s: int = Field(300, ge=1, description="Upper bound on a cached search's age.")
    pool_size: int = Field(10, ge=1, le=200)

    relay_batch_size: int = Field(200, ge=1, le=10_000)
    relay_idle_s: float = Field(0.2, gt=0, description="How long the relay sleeps when the outbox is empty.")
    relay_publish_timeout_s: float = Field(30.0, gt=0)
    relay_fault_pause_s: float = Field(
        0.0, ge=0, description="Fault tests only: pause after publishing a batch and before marking it sent."
    )

    billing_interval_s: float = Field(3600.0, gt=0, description="How often the worker runs bill generation.")
    grace_days: int = Field(5, ge=0, le=60, description="Default grace days before a bill is overdue.")
    late_fee_flat_cents: int = Field(2_500, ge=0)
    late_fee_percent_bps: int = Field(500, ge=0, le=10_000)
    late_fee_cap_cents: int | None = Field(None, ge=0)
    due_day: int = Field(1, ge=1, le=28, description="Default day of the month rent is due.")
