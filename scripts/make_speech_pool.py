"""Generate the shipped speech pool once with Debian's espeak-ng (not needed at run time).

Run from the repo root after `apt-get install -y espeak-ng`:
    python scripts/make_speech_pool.py [--out src/bindkit/assets/speech]

Every voice identity (an espeak accent + a voice variant) speaks the ten English number words, each at its own
seeded rate and pitch. Words are resampled 22.05 -> 16 kHz, trimmed of silence, levelled, and the ten words of one
voice are stored back to back (with short silences) in one Ogg/Vorbis file, which keeps the pool small (one codec
header per voice instead of per word) and quick to decode (Vorbis decodes ~4x faster than Opus in libsndfile). `manifest.json` lists every word with its file, start sample and length.
Voices are split by variant (timbre): the test variants never occur in train under any accent.
"""

import argparse
import io
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = [
    "en-us",
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
]
VARIANTS = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "croak", "klatt", "klatt3", "grandpa",
    "Andy", "Gene", "Lee", "max", "quincy", "robert", "michel", "edward",
    "f1", "f2", "f3", "f4", "f5", "Annie", "belinda", "linda", "steph", "aunty", "Alicia", "Andrea",
    "steph2", "steph3", "anika", "grandma",
]  # fmt: skip
TEST_VARIANTS = {"m3", "m7", "klatt3", "f2", "linda", "Alicia"}
ACCENTS_PER_VARIANT = 4
SAMPLE_RATE = 16000
GAP = int(0.15 * SAMPLE_RATE)  # silence between words inside one voice file


def synthesize(voice: str, word: str, rate: int, pitch: int) -> tuple[np.ndarray, int]:
    """One espeak-ng utterance as float32 mono and its sample rate."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        cmd = ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-z", "-w", f.name, word]
        subprocess.run(cmd, check=True, capture_output=True)
        wave, sr = sf.read(f.name, dtype="float32")
    if wave.ndim != 1 or len(wave) == 0:
        raise RuntimeError(f"espeak-ng gave no mono audio for {voice!r} {word!r}")
    return wave, sr


def resample_fft(wave: np.ndarray, sr: int, new_sr: int) -> np.ndarray:
    """Band-limited resampling by truncating the padded spectrum (fine for a one-off offline step)."""
    pad = np.pad(wave.astype(np.float64), (256, 256))
    n_new = round(len(pad) * new_sr / sr)
    spec = np.fft.rfft(pad)[: n_new // 2 + 1]
    out = np.fft.irfft(spec, n_new) * (n_new / len(pad))
    cut = round(256 * new_sr / sr)
    return out[cut : len(out) - cut].astype(np.float32)


def trim_and_level(wave: np.ndarray, sr: int) -> np.ndarray:
    """Cut leading/trailing silence (-40 dB of peak, 30 ms margin) and set the RMS to -20 dBFS (peak <= 0.95)."""
    loud = np.nonzero(np.abs(wave) > np.abs(wave).max() * 0.01)[0]
    margin = int(0.03 * sr)
    wave = wave[max(0, loud[0] - margin) : loud[-1] + margin]
    wave = wave * (0.1 / np.sqrt(np.mean(wave**2)))
    return (wave * min(1.0, 0.95 / np.abs(wave).max())).astype(np.float32)


def voice_identities() -> list[dict]:
    """Accent x variant identities: each variant with ACCENTS_PER_VARIANT accents, rotating through the list."""
    out = []
    for j, variant in enumerate(VARIANTS):
        for k in range(ACCENTS_PER_VARIANT):
            accent = ACCENTS[(j * 3 + k) % len(ACCENTS)]
            split = "test" if variant in TEST_VARIANTS else "train"
            out.append({"voice": f"{accent}+{variant}", "accent": accent, "variant": variant, "split": split})
    return out


def encode_vorbis(wave: np.ndarray) -> bytes:
    """Ogg/Vorbis bytes at 16 kHz mono (compression 0.8: ~19 dB waveform SNR, plenty for intelligible speech)."""
    buf = io.BytesIO()
    sf.write(buf, wave, SAMPLE_RATE, format="OGG", subtype="VORBIS", compression_level=0.8)
    return buf.getvalue()


def make_voice(ident: dict, rng: np.random.Generator, out: Path) -> list[dict]:
    """Synthesize the ten words of one voice into `<voice>.ogg`; return the manifest records."""
    records, pieces, pos = [], [], GAP
    for digit, word in enumerate(WORDS):
        rate, pitch = int(rng.integers(120, 221)), int(rng.integers(25, 81))
        wave, sr = synthesize(ident["voice"], word, rate, pitch)
        wave = trim_and_level(resample_fft(wave, sr, SAMPLE_RATE), SAMPLE_RATE)
        fname = ident["voice"] + ".ogg"
        records.append({"digit": digit, "word": word, "voice": ident["voice"], "rate": rate, "pitch": pitch,
                        "file": fname, "start": pos, "frames": len(wave)})  # fmt: skip
        pieces += [np.zeros(GAP, np.float32), wave]
        pos += GAP + len(wave)
    full = np.concatenate(pieces + [np.zeros(GAP, np.float32)])
    (out / fname).write_bytes(encode_vorbis(full))
    back, _ = sf.read(out / fname, dtype="float32")
    if len(back) != len(full):
        raise RuntimeError(f"{fname}: decoded {len(back)} samples, wrote {len(full)}")
    return records


def main() -> None:
    """Build the pool and its manifest."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="src/bindkit/assets/speech")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.ogg"):
        old.unlink()
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    rng = np.random.default_rng(args.seed)
    idents = voice_identities()
    records = [r for ident in idents for r in make_voice(ident, rng, out)]
    manifest = {"generator": version, "sample_rate": SAMPLE_RATE, "format": "ogg/vorbis", "words": WORDS,
                "voices": idents, "recordings": records}  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"{len(records)} recordings, {len(idents)} voices, {size / 1e6:.2f} MB in {out}")


if __name__ == "__main__":
    main()
