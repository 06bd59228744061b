"""Settings from the environment (and ./.env), named as the outside contract names them."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PipelineName = Literal["cascade", "realtime", "offline"]


class SettingsError(Exception):
    """A setting is malformed; the message names it in one line."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = "sqlite:///./data/voice_agent.db"
    redis_url: str | None = None
    public_base_url: str = "http://127.0.0.1:8080"

    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_validate: bool = True
    twilio_from_number: str | None = None
    twilio_api_base_url: str | None = None

    openai_api_key: str | None = None
    openai_base_url: str | None = None
    llm_model: str = "gpt-4o"
    stt_model: str = "whisper-1"
    tts_model: str = "tts-1"
    tts_voice: str = "alloy"
    agent_pipeline: PipelineName | None = None
    provider_timeout_s: float = Field(default=10.0, gt=0)

    endpointing_silence_ms: int = Field(default=500, ge=100, le=5000)
    #: Caller speech must last this long to count (as a turn or as a barge-in).
    barge_in_min_ms: int = Field(default=120, ge=20, le=2000)
    vad_aggressiveness: int = Field(default=2, ge=0, le=3)

    #: An SMS reply ready within this is sent as the webhook's TwiML; later, by the REST API.
    sms_reply_within_s: float = Field(default=3.0, gt=0, le=14)
    #: Agent replies per number per minute; beyond it messages are stored, not answered.
    sms_replies_per_minute: int = Field(default=5, ge=1, le=60)

    default_agent: str = "receptionist"
    default_tenant: str = "default"
    lead_webhook_secret: str | None = None
    session_secret: str | None = None
    data_dir: str = "./data"

    twenty_api_url: str | None = None
    twenty_api_key: str | None = None
    events_webhook_url: str | None = None
    events_webhook_secret: str | None = None
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None

    # Telephony flows (#4): lead webhook, outbound dialer, recordings, transfers.
    #: A second submission with the same email or phone within this window is the same lead.
    lead_duplicate_window_s: int = Field(default=600, ge=0)
    lead_rate_per_ip_per_min: int = Field(default=30, ge=1)
    lead_rate_per_tenant_per_min: int = Field(default=120, ge=1)
    #: How long the lead webhook waits for its call's turn in the CPS queue for a call_sid.
    lead_call_wait_s: float = Field(default=8.0, ge=0)
    #: Calls per second sent to Twilio's Calls.create (Twilio's default account cap is 1).
    outbound_cps: float = Field(default=1.0, gt=0, le=100)
    dialer_poll_s: float = Field(default=1.0, gt=0)
    #: Empty: DATA_DIR/recordings.
    recordings_dir: str | None = None
    recordings_enabled: bool = True
    transfer_ring_s: int = Field(default=20, ge=5, le=600)
    #: First wait before asking Twilio for a finished call's price (doubles, 3 tries).
    price_fetch_delay_s: float = Field(default=60.0, gt=0)

    # Usage metering, cost and billing (#14). Prices in USD, defaults and the date they
    # were read in the README's price table.
    #: Off only to measure what metering costs the call path (loadtest comparisons).
    metering_enabled: bool = True
    price_call_minute_usd: float = Field(default=0.0085, ge=0)  # inbound, per minute
    price_call_outbound_minute_usd: float = Field(default=0.014, ge=0)
    price_media_stream_minute_usd: float = Field(default=0.004, ge=0)
    price_stt_minute_usd: float = Field(default=0.006, ge=0)
    price_llm_input_per_1k_usd: float = Field(default=0.0025, ge=0)
    price_llm_output_per_1k_usd: float = Field(default=0.01, ge=0)
    price_tts_per_1k_chars_usd: float = Field(default=0.015, ge=0)
    price_sms_segment_usd: float = Field(default=0.0079, ge=0)
    price_realtime_audio_input_per_1k_usd: float = Field(default=0.04, ge=0)
    price_realtime_audio_output_per_1k_usd: float = Field(default=0.08, ge=0)
    price_realtime_text_input_per_1k_usd: float = Field(default=0.005, ge=0)
    price_realtime_text_output_per_1k_usd: float = Field(default=0.02, ge=0)
    stripe_api_base_url: str | None = None
    #: The Billing Meter's event_name; its value is the tenant's price in millionths of USD.
    stripe_meter_event_name: str = "voice_agent_usage"
    #: Meter events sent at once (one request each, concurrently) per outbox batch.
    stripe_batch_size: int = Field(default=50, ge=1, le=500)
    #: Share of the monthly spend cap at which the dashboard warns.
    spend_cap_warning: float = Field(default=0.8, gt=0, lt=1)
    # --- #12: post-call analysis and caller memory ---
    #: Analyse every finished call (summary, outcome, the agent's fields).
    analysis_enabled: bool = True
    #: The model of the analysis request (cascade); empty: LLM_MODEL.
    analysis_model: str | None = None
    #: How long a caller's memory (name, last interaction) is cached, seconds.
    caller_memory_ttl_s: float = Field(default=300.0, ge=0)
    #: How long a call's start waits for a known caller's greeting by name, ms (it is made
    #: between the voice webhook and the media stream); then the generic greeting plays.
    caller_greeting_wait_ms: int = Field(default=300, ge=0, le=5000)
    # --- #12: CRM (built-in; Twenty when TWENTY_API_URL and TWENTY_API_KEY are set) ---
    #: Requests a minute sent to Twenty (its limit is 100), shared by every worker with Redis.
    twenty_requests_per_minute: int = Field(default=95, ge=1, le=100)
    twenty_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # --- #15: deployment ---
    #: On SIGTERM, how long calls in progress may go on before the agent says goodbye.
    drain_timeout_s: float = Field(default=30.0, ge=0, le=3600)
    #: "text" (human) or "json" (one object a line, call_sid and tenant on a call's lines).
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    # --- #17: the realtime (speech-to-speech) pipeline ---
    realtime_model: str = "gpt-realtime"
    #: The Realtime websocket base (ws:// or wss://, up to /v1); empty: from OPENAI_BASE_URL.
    openai_realtime_url: str | None = None
    #: Who decides a barge-in on realtime calls: the model's server VAD or our own VAD.
    realtime_barge_in: Literal["server", "local"] = "server"
    #: No model audio this long after the caller's turn: the recovery phrase.
    realtime_stall_s: float = Field(default=4.0, gt=0, le=60)
    # --- #13: tenants' own agents ---
    #: Redis channel on which a worker that publishes a tenant's agent tells the others.
    agent_updates_channel: str = "voice_agent:agents"
    #: Every this many seconds each worker compares the agent versions it runs with the
    #: database's and reloads any that differ: a worker that missed a Redis message (a
    #: reconnect, Redis down at the time) converges within this bound.
    agent_resync_s: float = Field(default=30.0, ge=0.05, le=3600)
    # --- #16: runtime faults ---
    #: A provider stream (or transcription) that sends nothing for this long is given up
    #: on and asked again (capped by PROVIDER_TIMEOUT_S).
    provider_stall_s: float = Field(default=2.5, gt=0)
    #: Attempts per provider and request, the first included; then the fallback provider.
    provider_attempts: int = Field(default=2, ge=1, le=5)
    #: A 429 asking for a longer wait than this goes to the fallback provider at once.
    provider_max_retry_after_s: float = Field(default=1.0, ge=0)
    #: Failures in a row that open a provider's breaker (per tenant), and for how long.
    provider_breaker_failures: int = Field(default=3, ge=1)
    provider_breaker_open_s: float = Field(default=30.0, gt=0)
    #: A second OpenAI-compatible provider for when the first fails; empty: none.
    fallback_openai_base_url: str | None = None
    #: Empty: OPENAI_API_KEY.
    fallback_openai_api_key: str | None = None
    #: Empty: the primary's model names and voice.
    fallback_llm_model: str | None = None
    fallback_stt_model: str | None = None
    fallback_tts_model: str | None = None
    fallback_tts_voice: str | None = None
    #: The last resort when the primary and fallback STT or TTS both fail: the bundled
    #: offline Whisper / Piper for that stage (the call goes on, switching back once the
    #: breakers close). Used only where the offline models are installed.
    fallback_offline_speech: bool = True
    #: A reply with no audio this long after the caller's turn ended (the endpointing
    #: silence) gets a recovery phrase (cached audio). A reply is due about 1 s after (the
    #: cascade's usual latency), so the phrase comes within 1.5 s of it, and with the
    #: default endpointing before 3 s of silence. 0: never.
    recovery_phrase_after_s: float = Field(default=2.0, ge=0, le=2.5)
    #: Silence after a recovery phrase before the next one (dead air stays under 3 s).
    recovery_gap_s: float = Field(default=2.0, gt=0, le=2.9)
    #: Turns in a row lost to provider failures before the call is transferred or ended.
    provider_failed_turns_before_end: int = Field(default=3, ge=1)
    #: Where call records wait while the database is away (one file per worker);
    #: empty: DATA_DIR/journal.
    write_journal_dir: str | None = None
    write_journal_enabled: bool = True
    #: Records held in memory during an outage; the rest wait in the journal only.
    write_memory_limit: int = Field(default=20_000, ge=100)
    #: A call whose media stops arriving this long is ended (Twilio sends 50 frames a
    #: second, silence included). 0: never.
    media_timeout_s: float = Field(default=10.0, ge=0)
    #: Longest call (a tenant's max_call_s overrides it) and the spoken warning this long
    #: before it. 0: no limit.
    max_call_s: int = Field(default=3600, ge=0)
    call_warning_s: int = Field(default=60, ge=0)

    # --- turn-taking (#18) ---------------------------------------------------------------
    #: The VAD's level gate follows the line's noise floor (quiet callers, noisy lines);
    #: false: the fixed -50 dBFS gate.
    adaptive_noise_floor: bool = True

    @field_validator("public_base_url")
    @classmethod
    def _origin(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) origin such as https://agent.example.com")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        scheme = urlsplit(value).scheme.split("+")[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must start with redis://")
        return value or None

    @field_validator("session_secret")
    @classmethod
    def _session_secret(cls, value: str | None) -> str | None:
        if value and len(value) < 16:
            raise ValueError("must be at least 16 characters (it signs dashboard sessions)")
        return value or None

    @field_validator("events_webhook_url")
    @classmethod
    def _events_url(cls, value: str | None) -> str | None:
        parts = urlsplit(value or "")
        if value and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError("must be an http(s) URL such as https://n8n.example.com/webhook/x")
        return value or None

    @field_validator("events_webhook_secret")
    @classmethod
    def _events_secret(cls, value: str | None) -> str | None:
        if not value:
            return None
        from voice_agent.events.secret import check_secret

        check_secret(value)  # ValueError naming what is wrong
        return value

    @model_validator(mode="after")
    def _pipeline(self) -> Settings:
        if self.agent_pipeline is None:
            self.agent_pipeline = "cascade" if self.openai_api_key else "offline"
        if self.agent_pipeline in ("cascade", "realtime") and not self.openai_api_key:
            raise ValueError(f"AGENT_PIPELINE={self.agent_pipeline} needs OPENAI_API_KEY")
        return self

    @model_validator(mode="after")
    def _events(self) -> Settings:
        if self.events_webhook_url and not self.events_webhook_secret:
            raise ValueError("EVENTS_WEBHOOK_URL needs EVENTS_WEBHOOK_SECRET (whsec_…)")
        return self

    @property
    def pipeline(self) -> PipelineName:
        assert self.agent_pipeline is not None
        return self.agent_pipeline


def load_settings(**overrides: object) -> Settings:
    """Read settings; a malformed one raises SettingsError naming it."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise SettingsError(f"{name}: {first['msg']}") from None
