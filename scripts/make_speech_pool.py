"""Generate the shipped speech pool once with three Debian speech engines (not needed at run time).

Run from the repo root after `apt-get install -y espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k
festvox-us-slt-hts`:
    python scripts/make_speech_pool.py [--out src/bindkit/assets/speech] [--engines flite,festival]

`--engines` regenerates only those engines and keeps the other engines' files and manifest entries as they are.

Engines and splits (each voice identity has a `split` in the manifest):
- espeak-ng (formant synthesis): an accent + a voice variant speaks the ten English number words, each at its own
  seeded rate and pitch; train / test split by variant (timbre). en-gb identities are spoken as "en+<variant>"
  (espeak-ng 1.51 ignores a variant after "en-gb"); `--random-variants N` adds N seeded random train variants.
- flite (CMU Flite: clustergen voices awb, rms, slt and the kal diphone voices): `RENDITIONS` identities per voice,
  each with a seeded duration stretch and F0 mean. awb and rms are train; kal, kal16 and slt are test (held-out
  voices of a seen engine), because Festival's held-out voices are recorded by the same speakers (KAL, SLT).
- festival (Festival 2.5: kal and ked residual-LPC diphone voices, the SLT HTS voice): the held-out *engine*, split
  `engine`; never in training.
Words of the other engines are synthesised at their own rate (8, 16 or 32 kHz) and treated like espeak-ng's. Words are resampled 22.05 -> 16 kHz, trimmed of silence, levelled, and the ten words of one
voice are stored back to back (with short silences) in one Ogg/Vorbis file, which keeps the pool small (one codec
header per voice instead of per word) and quick to decode (Vorbis decodes ~4x faster than Opus in libsndfile). `manifest.json` lists every word with its file, start sample and length.
Every engine's random stream is its own (seeded by `--seed` and the engine's name), so adding an engine leaves
the others' recordings unchanged.
"""

import argparse
import io
import json
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Callable
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
# espeak-ng 1.51 drops a variant given with the language name en-gb ("en-gb+f2" sounds exactly like "en-gb", so
# every en-gb identity was one voice, in train and test alike); its voice file's name, "en", keeps the variant
ESPEAK_NAME = {"en-gb": "en"}
# --random-variants N adds N seeded random variant files (train only), each parameter drawn from about the named
# train variants' range. Off in the shipped pool: 96 of them moved held-out audio by +1.5 points over 3 seeds (within
# the seeds' spread) and lowered length invariance (docs/demo.md, "A voice leak, fixed")
# flite voice -> split (kal, kal16 and slt share their speakers with festival's held-out voices: held out too)
FLITE_VOICES = {"awb": "train", "rms": "train", "kal": "test", "kal16": "test", "slt": "test"}
FESTIVAL_VOICES = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]  # all: split "engine"
HELDOUT_ENGINE = "festival"
RENDITIONS = 4  # identities per flite/festival voice (seeded tempo and pitch)
ENGINES = ("espeak-ng", "flite", "festival")
SAMPLE_RATE = 16000
GAP = int(0.15 * SAMPLE_RATE)  # silence between words inside one voice file


def _read_wav(path: str, what: str) -> tuple[np.ndarray, int]:
    wave, sr = sf.read(path, dtype="float32")
    if wave.ndim != 1 or len(wave) == 0:
        raise RuntimeError(f"{what} gave no mono audio")
    return wave, sr


def synthesize(voice: str, word: str, rate: int, pitch: int, data: str = "") -> tuple[np.ndarray, int]:
    """One espeak-ng utterance as float32 mono and its sample rate (`data`: a parent of espeak-ng-data)."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        path = [f"--path={data}"] if data else []
        cmd = ["espeak-ng", *path, "-v", voice, "-s", str(rate), "-p", str(pitch), "-z", "-w", f.name, word]
        subprocess.run(cmd, check=True, capture_output=True)
        return _read_wav(f.name, f"espeak-ng {voice!r} {word!r}")


def synthesize_flite(voice: str, word: str, stretch: float, f0: int) -> tuple[np.ndarray, int]:
    """One flite utterance: `stretch` scales durations, `f0` is the intonation's mean pitch (Hz)."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        cmd = ["flite", "-voice", voice, "-t", word, "--setf", f"duration_stretch={stretch:.3f}",
               "--setf", f"int_f0_target_mean={f0}", "-o", f.name]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        return _read_wav(f.name, f"flite {voice!r} {word!r}")


def synthesize_festival(voice: str, word: str, stretch: float, _f0: int) -> tuple[np.ndarray, int]:
    """One Festival utterance (text2wave) with the voice `voice_<voice>` and a duration stretch."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        cmd = ["text2wave", "-eval", f"(voice_{voice})", "-eval",
               f"(Parameter.set 'Duration_Stretch {stretch:.3f})", "-o", f.name]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, input=word.encode())
        return _read_wav(f.name, f"festival {voice!r} {word!r}")


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


def random_variant(rng: np.random.Generator) -> dict:
    """Parameters of one random espeak-ng voice variant (gender, pitch range, formants, breath, voicing...)."""
    base = int(rng.integers(65, 211))
    formants = [[int(rng.integers(75, 141)), int(rng.integers(50, 151)), int(rng.integers(60, 171))]
                for _ in range(5)]  # fmt: skip
    breath = [int(b) for b in rng.integers(0, 9, 8)] if rng.random() < 0.5 else []
    echo = [int(rng.integers(20, 141)), int(rng.integers(5, 41))] if rng.random() < 0.3 else []
    return {"gender": "female" if rng.random() < 0.5 else "male", "pitch": [base, base + int(rng.integers(30, 161))],
            "formants": formants, "breath": breath, "voicing": int(rng.integers(30, 151)),
            "flutter": int(rng.integers(0, 21)), "roughness": int(rng.integers(0, 5)), "echo": echo}  # fmt: skip


def variant_file(name: str, v: dict) -> str:
    """The espeak-ng voice-variant file text of `random_variant`'s parameters."""
    lines = ["language variant", f"name {name}", f"gender {v['gender']}", "pitch {} {}".format(*v["pitch"])]
    lines += [f"formant {k} {f} {h} {w}" for k, (f, h, w) in enumerate(v["formants"])]
    lines += [f"voicing {v['voicing']}", f"flutter {v['flutter']}", f"roughness {v['roughness']}"]
    lines += ["breath " + " ".join(map(str, v["breath"]))] if v["breath"] else []
    lines += ["echo {} {}".format(*v["echo"])] if v["echo"] else []
    return "\n".join(lines) + "\n"


def random_identities(rng: np.random.Generator, n: int) -> list[dict]:
    """`n` train identities `<accent>+rand<k>`, one accent each (rotating), with their parameters."""
    return [{"voice": f"{ACCENTS[k % len(ACCENTS)]}+rand{k:02d}", "accent": ACCENTS[k % len(ACCENTS)],
             "variant": f"rand{k:02d}", "split": "train", "variant_params": random_variant(rng)}
            for k in range(n)]  # fmt: skip


def write_variants(idents: list[dict], root: Path) -> None:
    """Copy espeak-ng's data under `root` and add the identities' random variant files to it."""
    data = engine_version("espeak-ng").split("Data at: ")[-1]  # where this espeak-ng's data lives
    shutil.copytree(data, root / "espeak-ng-data")
    # espeak-ng lists at most 349 voices: keep only the English languages, drop the named variants (unused here)
    for f in (root / "espeak-ng-data" / "lang").rglob("*"):
        if f.is_file() and not f.name.startswith("en"):
            f.unlink()
    folder = root / "espeak-ng-data" / "voices" / "!v"
    shutil.rmtree(folder)
    folder.mkdir()
    for i in idents:
        (folder / i["variant"]).write_text(variant_file(i["variant"], i["variant_params"]))


def encode_vorbis(wave: np.ndarray) -> bytes:
    """Ogg/Vorbis bytes at 16 kHz mono (compression 0.8: ~19 dB waveform SNR, plenty for intelligible speech)."""
    buf = io.BytesIO()
    sf.write(buf, wave, SAMPLE_RATE, format="OGG", subtype="VORBIS", compression_level=0.8)
    return buf.getvalue()


def renditions(engine: str, voices: dict[str, str]) -> list[dict]:
    """RENDITIONS identities `<engine>+<voice>-<k>` per voice of a non-espeak engine, with their split."""
    return [{"voice": f"{engine}+{v}-{k}", "engine": engine, "engine_voice": v, "rendition": k, "split": split}
            for v, split in voices.items() for k in range(RENDITIONS)]  # fmt: skip


def espeak_words(data: str = "") -> Callable:
    """A word of an espeak-ng identity at a seeded rate and pitch (`data`: where its variant files are)."""

    def word_of(ident: dict, word: str, rng: np.random.Generator) -> tuple[np.ndarray, int, dict]:
        rate, pitch = int(rng.integers(120, 221)), int(rng.integers(25, 81))
        name = f"{ESPEAK_NAME.get(ident['accent'], ident['accent'])}+{ident['variant']}"
        return (*synthesize(name, word, rate, pitch, data), {"rate": rate, "pitch": pitch})

    return word_of


def other_word(synth: Callable) -> Callable:
    """A word of a flite/festival identity: seeded duration stretch 0.8-1.25 and F0 mean 90-200 Hz."""

    def word_of(ident: dict, word: str, rng: np.random.Generator) -> tuple[np.ndarray, int, dict]:
        stretch, f0 = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))), int(rng.integers(90, 201))
        return (*synth(ident["engine_voice"], word, stretch, f0), {"stretch": round(stretch, 3), "f0": f0})

    return word_of


def make_voice(ident: dict, rng: np.random.Generator, out: Path, word_fn: Callable) -> list[dict]:
    """Synthesize the ten words of one voice into `<voice>.ogg`; return the manifest records."""
    records, pieces, pos = [], [], GAP
    for digit, word in enumerate(WORDS):
        wave, sr, params = word_fn(ident, word, rng)
        wave = trim_and_level(resample_fft(wave, sr, SAMPLE_RATE), SAMPLE_RATE)
        fname = ident["voice"] + ".ogg"
        records.append({"digit": digit, "word": word, "voice": ident["voice"], **params,
                        "file": fname, "start": pos, "frames": len(wave)})  # fmt: skip
        pieces += [np.zeros(GAP, np.float32), wave]
        pos += GAP + len(wave)
    full = np.concatenate(pieces + [np.zeros(GAP, np.float32)])
    (out / fname).write_bytes(encode_vorbis(full))
    back, _ = sf.read(out / fname, dtype="float32")
    if len(back) != len(full):
        raise RuntimeError(f"{fname}: decoded {len(back)} samples, wrote {len(full)}")
    return records


def engine_version(engine: str) -> str:
    """The engine's version line, for the manifest's provenance."""
    cmd = {"espeak-ng": ["espeak-ng", "--version"], "flite": ["flite", "--version"],
           "festival": ["festival", "--version"]}[engine]  # fmt: skip
    text = subprocess.run(cmd, capture_output=True, text=True)
    return " ".join((text.stdout + text.stderr).split())


def build_engine(engine: str, seed: int, out: Path, n_random: int = 0) -> tuple[list[dict], list[dict]]:
    """(identities, records) of one engine, its files written to `out` (`n_random`: espeak-ng's random variants)."""
    if engine == "espeak-ng":
        return build_espeak(seed, out, n_random)
    else:
        voices = FLITE_VOICES if engine == "flite" else {v: "engine" for v in FESTIVAL_VOICES}
        idents = renditions(engine, voices)
        rng = np.random.default_rng([seed, zlib.crc32(engine.encode())])
        word_fn = other_word(synthesize_flite if engine == "flite" else synthesize_festival)
    records = [r for ident in idents for r in make_voice(ident, rng, out, word_fn)]
    return idents, records


def build_espeak(seed: int, out: Path, n_random: int = 0) -> tuple[list[dict], list[dict]]:
    """espeak-ng's named variants (the first pool's stream: seed alone) and its random variants (their own)."""
    rng, idents = np.random.default_rng(seed), voice_identities()
    records = [r for ident in idents for r in make_voice(ident, rng, out, espeak_words())]
    rng = np.random.default_rng([seed, zlib.crc32(b"espeak-ng-random")])
    rand = random_identities(rng, n_random)
    if rand:
        with tempfile.TemporaryDirectory() as tmp:
            write_variants(rand, Path(tmp))
            records += [r for ident in rand for r in make_voice(ident, rng, out, espeak_words(tmp))]
    return [{**i, "engine": "espeak-ng"} for i in idents + rand], records


def main() -> None:
    """Build the pool (all engines, or those of --engines beside the kept others) and its manifest."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="src/bindkit/assets/speech")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines to (re)generate")
    ap.add_argument(
        "--random-variants", type=int, default=0, help="seeded random espeak-ng train variants to add"
    )
    args = ap.parse_args()
    out, todo = Path(args.out), args.engines.split(",")
    if unknown := set(todo) - set(ENGINES):
        raise SystemExit(f"unknown engines {sorted(unknown)}; known: {ENGINES}")
    out.mkdir(parents=True, exist_ok=True)
    old = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
    engine_of = {v["voice"]: v.get("engine", "espeak-ng") for v in old.get("voices", [])}
    for f in out.glob("*.ogg"):
        if engine_of.get(f.stem) in todo or f.stem not in engine_of:
            f.unlink()
    generators = old.get("generators", {"espeak-ng": old["generator"]} if "generator" in old else {})
    idents = [{**v, "engine": engine_of[v["voice"]]} for v in old.get("voices", [])
              if engine_of[v["voice"]] not in todo]  # fmt: skip
    records = [r for r in old.get("recordings", []) if engine_of[r["voice"]] not in todo]
    for engine in todo:
        i, r = build_engine(engine, args.seed, out, args.random_variants)
        idents, records, generators[engine] = idents + i, records + r, engine_version(engine)
    order = {e: k for k, e in enumerate(ENGINES)}
    engine_of = {v["voice"]: v["engine"] for v in idents}
    idents.sort(key=lambda v: order[v["engine"]])  # stable: each engine keeps its own order
    records.sort(key=lambda r: order[engine_of[r["voice"]]])
    manifest = {"generators": generators, "heldout_engine": HELDOUT_ENGINE, "sample_rate": SAMPLE_RATE,
                "format": "ogg/vorbis", "words": WORDS, "voices": idents, "recordings": records}  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"{len(records)} recordings, {len(idents)} voices, {size / 1e6:.2f} MB in {out}")


if __name__ == "__main__":
    main()
