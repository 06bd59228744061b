"""The price table (PRICE_* settings) and what a set of usage rows costs, by category."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from voice_agent.conversation.ports import METERS
from voice_agent.settings import Settings

Category = Literal["telephony", "stt", "llm", "tts"]
CATEGORIES: tuple[Category, ...] = ("telephony", "stt", "llm", "tts")

#: Meters of the shell, beside the providers' own (conversation.ports.METERS). A call's
#: seconds are metered as "twilio:inbound" / "twilio:outbound" (the model column).
CALL_SECONDS = "call_seconds"
SMS_SEGMENTS_IN = "sms_segments_in"
SMS_SEGMENTS_OUT = "sms_segments_out"
ALL_METERS = (*METERS, CALL_SECONDS, SMS_SEGMENTS_IN, SMS_SEGMENTS_OUT)

#: Where each meter's cost is shown. Realtime audio in and out stand where STT and TTS
#: stand in the cascade; its text tokens are the LLM's.
CATEGORY: dict[str, Category] = {
    CALL_SECONDS: "telephony",
    SMS_SEGMENTS_IN: "telephony",
    SMS_SEGMENTS_OUT: "telephony",
    "stt_seconds": "stt",
    "realtime_audio_input_tokens": "stt",
    "llm_input_tokens": "llm",
    "llm_output_tokens": "llm",
    "realtime_text_input_tokens": "llm",
    "realtime_text_output_tokens": "llm",
    "tts_characters": "tts",
    "realtime_audio_output_tokens": "tts",
}

#: Usage from bundled models is counted like any other and priced at nothing.
FREE_PREFIX = "offline:"
OUTBOUND_CALL = "twilio:outbound"


@dataclass(frozen=True, slots=True)
class PriceTable:
    """USD per unit of each meter (per second, token, character or segment)."""

    per_unit: Mapping[str, float]
    outbound_call_per_second: float

    @classmethod
    def from_settings(cls, s: Settings) -> PriceTable:
        stream = s.price_media_stream_minute_usd
        return cls(
            per_unit={
                CALL_SECONDS: (s.price_call_minute_usd + stream) / 60.0,
                SMS_SEGMENTS_IN: s.price_sms_segment_usd,
                SMS_SEGMENTS_OUT: s.price_sms_segment_usd,
                "stt_seconds": s.price_stt_minute_usd / 60.0,
                "llm_input_tokens": s.price_llm_input_per_1k_usd / 1000.0,
                "llm_output_tokens": s.price_llm_output_per_1k_usd / 1000.0,
                "tts_characters": s.price_tts_per_1k_chars_usd / 1000.0,
                "realtime_audio_input_tokens": s.price_realtime_audio_input_per_1k_usd / 1000.0,
                "realtime_audio_output_tokens": s.price_realtime_audio_output_per_1k_usd / 1000.0,
                "realtime_text_input_tokens": s.price_realtime_text_input_per_1k_usd / 1000.0,
                "realtime_text_output_tokens": s.price_realtime_text_output_per_1k_usd / 1000.0,
            },
            outbound_call_per_second=(s.price_call_outbound_minute_usd + stream) / 60.0,
        )

    def cost(self, meter: str, model: str, quantity: float) -> float:
        """USD for one row (or one (meter, model) total). Call time is priced by the second:
        Twilio bills whole minutes per call, and its own figure is kept beside ours."""
        if model.startswith(FREE_PREFIX):
            return 0.0
        if meter == CALL_SECONDS and model == OUTBOUND_CALL:
            return quantity * self.outbound_call_per_second
        return quantity * self.per_unit.get(meter, 0.0)


@dataclass(slots=True)
class Cost:
    """USD by category; ``total`` is their sum. The keys of the post-call record."""

    telephony: float = 0.0
    stt: float = 0.0
    llm: float = 0.0
    tts: float = 0.0

    @property
    def total(self) -> float:
        return self.telephony + self.stt + self.llm + self.tts

    def add(self, category: Category, usd: float) -> None:
        setattr(self, category, getattr(self, category) + usd)

    def as_dict(self, digits: int = 6) -> dict[str, float]:
        out = {name: round(getattr(self, name), digits) for name in CATEGORIES}
        # The total shown is the sum of the parts shown, so a breakdown always adds up.
        out["total"] = round(sum(out.values()), digits)
        return out

    def times(self, factor: float) -> Cost:
        return Cost(*(getattr(self, name) * factor for name in CATEGORIES))


def cost_of(prices: PriceTable, rows: Iterable[tuple[str, str, float]]) -> Cost:
    """The cost of (meter, model, quantity) rows or totals."""
    cost = Cost()
    for meter, model, quantity in rows:
        category = CATEGORY.get(meter)
        if category is not None:
            cost.add(category, prices.cost(meter, model, quantity))
    return cost


@dataclass(slots=True)
class UsageSummary:
    """The post-call record's "usage": totals of the contract's meters, plus any other."""

    totals: dict[str, float] = field(default_factory=dict)

    def add(self, meter: str, quantity: float) -> None:
        self.totals[meter] = self.totals.get(meter, 0.0) + quantity

    def as_record(self) -> dict[str, float]:
        t = self.totals
        record = {
            "call_seconds": t.get(CALL_SECONDS, 0.0),
            "stt_seconds": round(t.get("stt_seconds", 0.0), 3),
            "llm_input_tokens": int(t.get("llm_input_tokens", 0)),
            "llm_output_tokens": int(t.get("llm_output_tokens", 0)),
            "tts_characters": int(t.get("tts_characters", 0)),
            "sms_segments": int(t.get(SMS_SEGMENTS_IN, 0) + t.get(SMS_SEGMENTS_OUT, 0)),
        }
        for meter, quantity in t.items():
            if meter.startswith("realtime_"):
                record[meter] = int(quantity)
        return record
