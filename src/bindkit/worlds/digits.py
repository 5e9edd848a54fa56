"""The digits world: ten classes (0-9) in every modality, each sample one written-and-spoken instance.

An instance is a writer (seeded style, their voice) writing one digit with one allograph on a surface, in an ink,
under a light, at a size and slant; every modality of the instance derives from the same pen path and clock:
image (the photo of the written digit), video (it being written), thermal (the finger's heat trace), depth (the
same path carved or embossed on a plate), IMU (the pen's motion), plus the digit spoken by the writer's voice
(recorded with espeak-ng, flite and festival, shipped) and a caption. Train and test use disjoint writers, voices and
random streams; `revoice(test, "engine")` gives the same test instances spoken by the held-out engine's voices.

    world = DigitsWorld(seed=0)
    train = world.sample("train", 3000, seed=0)        # all modalities, eager
    test = world.sample("test", 1000, modalities=("image", "audio"))
    train.images.shape, train.audio.shape, train.imu.shape   # (3000, 64, 64, 3) (3000, 32000) (3000, 6, 400)
"""

from dataclasses import dataclass, field, fields, replace

import numpy as np

from . import imu, relief, speech
from .captions import WORDS, caption, class_prompts
from .paths import (
    N_ALLOGRAPHS_PER_DIGIT,
    Geometry,
    clock,
    place,
    wobble_fields,
    writer_styles,
)
from .pixels import render_pixels
from .seeds import rngs as _rngs
from .surfaces import LIGHT_NAMES, SURFACES, inks_for

MODALITIES = ("image", "video", "audio", "depth", "thermal", "imu", "text")
SPLITS = {"train": 1, "test": 2}
# physical width of the frame (m) and relative writing tempo per surface: big boards are written large and slowly
FRAME_METRES = {"white paper": 0.08, "ruled paper": 0.08, "grid paper": 0.08, "yellow notepad": 0.08,
                "kraft paper": 0.1, "whiteboard": 0.3, "chalkboard": 0.35, "wood": 0.15}  # fmt: skip
TEMPO = {"whiteboard": 0.6, "chalkboard": 0.6, "wood": 0.85}
SIZE_NAMES = ((0.58, "small"), (0.7, "medium"), (1.0, "large"))


def size_name(size: float) -> str:
    """small / medium / large from the digit height as a fraction of the frame."""
    return next(name for top, name in SIZE_NAMES if size < top or top == 1.0)


@dataclass
class Instances:
    """A batch of instances: attributes per instance and the raw arrays of the rendered modalities."""

    split: str
    seed: int
    ids: list[str]
    digit: np.ndarray  # (n,) int64 class 0-9
    writer: np.ndarray  # (n,) int64 writer id (train and test ranges are disjoint)
    voice: list[str]  # voice identity: espeak-ng "accent+variant", "flite+<voice>-<k>", "festival+<voice>-<k>"
    allograph: np.ndarray  # (n,) which way of writing the digit
    surface: list[str]
    ink: list[str]
    lighting: list[str]
    relief: list[str]  # depth: engraved or embossed
    size: np.ndarray  # (n,) digit height / frame height
    slant: np.ndarray  # (n,) degrees, positive leans right
    pen_elevation: np.ndarray  # (n,) writer's pen angle above the surface at rest, degrees
    pen_azimuth: (
        np.ndarray
    )  # (n,) writer's pen direction in the surface plane (from +x, counter-clockwise), degrees
    captions: list[str]
    geometry: Geometry = field(repr=False)
    metres_per_px: np.ndarray = field(repr=False)  # (n,) physical scale of the page (IMU)
    entropy: np.ndarray = field(repr=False)  # (n, 4) seed words of each instance's random streams
    image_size: int = 64  # the frame the geometry was laid out in
    window_seconds: float = 2.0  # the clock of the video and IMU
    sample_rate: int = 16000
    video_fps: float = 4.0
    imu_rate: float = 200.0
    images: np.ndarray | None = field(default=None, repr=False)  # uint8 (n, H, W, 3)
    videos: np.ndarray | None = field(default=None, repr=False)  # uint8 (n, T, H, W, 3)
    audio: np.ndarray | None = field(default=None, repr=False)  # float32 (n, samples) in [-1, 1]
    audio_span: np.ndarray | None = field(default=None, repr=False)  # (n, 2) samples [start, end) of the word
    depth: np.ndarray | None = field(default=None, repr=False)  # float32 (n, H, W) disparity
    thermal: np.ndarray | None = field(default=None, repr=False)  # float32 (n, H, W) in [0, 1]
    imu: np.ndarray | None = field(
        default=None, repr=False
    )  # float32 (n, 6, T): acc xyz m/s^2, gyro xyz rad/s

    def __len__(self) -> int:
        return len(self.ids)

    def attributes(self, i: int) -> dict:
        """The attributes of instance i as plain JSON-able values."""
        return {
            "digit": int(self.digit[i]), "label": WORDS[int(self.digit[i])], "writer": int(self.writer[i]),
            "voice": self.voice[i], "allograph": int(self.allograph[i]), "surface": self.surface[i],
            "ink": self.ink[i], "lighting": self.lighting[i], "relief": self.relief[i],
            "size": round(float(self.size[i]), 4), "size_name": size_name(float(self.size[i])),
            "slant": round(float(self.slant[i]), 2), "pen_elevation": round(float(self.pen_elevation[i]), 2),
            "pen_azimuth": round(float(self.pen_azimuth[i]), 2), "caption": self.captions[i],
        }  # fmt: skip

    def select(self, index) -> "Instances":
        """A new Instances holding the chosen rows (index: int array, bool mask or slice)."""
        idx = np.arange(len(self))[index]
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                out[f.name] = v[idx]
            elif isinstance(v, list):
                out[f.name] = [v[i] for i in idx]
            elif isinstance(v, Geometry):
                out[f.name] = Geometry(*(getattr(v, g.name)[idx] for g in fields(Geometry)))
        return replace(self, **out)


class DigitsWorld:
    """A seeded generator of the ten-digit world; see the module docstring."""

    def __init__(self, seed: int = 0, image_size: int = 64, video_frames: int = 8, window_seconds: float = 2.0,
                 imu_length: int = 400, audio_seconds: float = 2.0, sample_rate: int = 16000,
                 writers: tuple[int, int] = (300, 100), imu_noise: float = 1.0):  # fmt: skip
        _check(isinstance(seed, int) and seed >= 0, f"seed must be a non-negative int, got {seed!r}")
        _check(
            isinstance(image_size, int) and image_size >= 16,
            f"image_size must be an int >= 16, got {image_size!r}",
        )
        _check(video_frames >= 1 and imu_length >= 8, "video_frames must be >= 1 and imu_length >= 8")
        _check(
            window_seconds >= 1.0,
            f"window_seconds must be >= 1.0 (time to write a digit), got {window_seconds}",
        )
        _check(
            audio_seconds >= 1.0, f"audio_seconds must be >= 1.0 (longest word ~0.9 s), got {audio_seconds}"
        )
        _check(min(writers) >= 1, f"writers needs at least one train and one test writer, got {writers}")
        self.seed, self.image_size, self.video_frames = seed, image_size, video_frames
        self.window_seconds, self.imu_length, self.audio_seconds = window_seconds, imu_length, audio_seconds
        self.sample_rate, self.imu_noise = sample_rate, imu_noise
        self.styles = writer_styles(seed, sum(writers))
        self.split_writers = {"train": np.arange(writers[0]), "test": writers[0] + np.arange(writers[1])}
        rng = np.random.default_rng(np.random.SeedSequence([seed, 104729]))
        self.writer_voice = {}
        for split, ws in self.split_writers.items():
            voices = speech.split_voices(split)
            self.writer_voice.update({int(w): voices[int(rng.integers(len(voices)))] for w in ws})
        rng = np.random.default_rng(np.random.SeedSequence([seed, 104729, 3]))  # its own stream: test unchanged
        engine = speech.split_voices("engine")
        self.engine_voice = {int(w): engine[int(rng.integers(len(engine)))] for w in self.split_writers["test"]
                             } if engine else {}  # fmt: skip

    @property
    def video_fps(self) -> float:
        """Frames per second of the videos (frames span the writing window)."""
        return self.video_frames / self.window_seconds

    @property
    def imu_rate(self) -> float:
        """IMU samples per second (imu_length samples span the writing window)."""
        return self.imu_length / self.window_seconds

    def voices(self, split: str) -> list[str]:
        """Voice identities used by a split."""
        return speech.split_voices(_split(split))

    def writers(self, split: str) -> np.ndarray:
        """Writer ids of a split."""
        return self.split_writers[_split(split)]

    def revoice(self, inst: Instances, group: str = "engine") -> Instances:
        """A copy of test instances whose writers speak with the held-out engine's voices (audio not rendered)."""
        _check(group == "engine", f"group must be 'engine', got {group!r}")
        _check(inst.split == "test" and bool(self.engine_voice), "revoice needs test instances and an engine split")
        voices = [self.engine_voice[int(w)] for w in inst.writer]
        return replace(inst.select(slice(None)), voice=voices, audio=None, audio_span=None)

    @staticmethod
    def class_names() -> list[str]:
        """The ten class names, index = digit."""
        return list(WORDS)

    @staticmethod
    def class_prompts(templates: list[str] | None = None) -> list[list[str]]:
        """Text prompts per class for zero-shot classification, [10][k]."""
        return class_prompts(templates)

    def sample(self, split: str, n: int, seed: int = 0, modalities=MODALITIES) -> Instances:
        """Draw n instances of a split (digits cycle 0..9) and render the requested modalities eagerly."""
        split, want = _split(split), _modalities(modalities)
        _check(isinstance(n, int | np.integer) and n >= 1, f"n must be a positive int, got {n!r}")
        _check(
            isinstance(seed, int | np.integer) and seed >= 0, f"seed must be a non-negative int, got {seed!r}"
        )
        entropy = np.array([[self.seed, SPLITS[split], int(seed), i] for i in range(n)], np.int64)
        inst = self._instances(split, int(seed), entropy)
        return self.render(inst, want)

    def render(self, inst: Instances, modalities=MODALITIES) -> Instances:
        """Fill the arrays of the requested modalities (in place; returns the same Instances)."""
        want = _modalities(modalities)
        laid_out = (int(inst.entropy[0, 0]), inst.image_size, inst.window_seconds)
        _check(
            laid_out == (self.seed, self.image_size, self.window_seconds),
            f"these instances were laid out by a world with (seed, image_size, window_seconds)={laid_out}; "
            f"this world has {(self.seed, self.image_size, self.window_seconds)}",
        )
        if want & {"image", "video", "thermal", "depth"}:
            arrays = render_pixels(inst, want, self.image_size, self.video_frames, self.window_seconds)
            for m, arr in arrays.items():
                setattr(inst, {"image": "images", "video": "videos"}.get(m, m), arr)
        if "imu" in want:
            g = self.styles
            clean = imu.clean_imu(inst.geometry, inst.metres_per_px, inst.pen_elevation, inst.pen_azimuth,
                                  g.hand_lag[inst.writer], self.imu_length, self.imu_rate)  # fmt: skip
            errors = imu.sensor_errors(
                _rngs(inst.entropy, "imu"), self.imu_length, self.imu_rate, self.imu_noise
            )
            inst.imu = (clean + errors).astype(np.float32)
        if "audio" in want:
            pool = speech.load_pool()  # decoded on first use
            index = pool.index()
            rec = np.array([index[(v, int(d))] for v, d in zip(inst.voice, inst.digit, strict=True)])
            inst.audio, inst.audio_span = speech.speak_with_spans(
                pool, rec, _rngs(inst.entropy, "audio"), self.audio_seconds, self.sample_rate
            )
        return inst

    def _instances(self, split: str, seed: int, entropy: np.ndarray) -> Instances:
        """Attributes and geometry of the instances (no rendering)."""
        n, size_px, st = len(entropy), self.image_size, self.styles
        digit = np.arange(n) % 10
        rows = [
            self._draw_attributes(r, int(d), split)
            for r, d in zip(_rngs(entropy, "attributes"), digit, strict=True)
        ]
        cols = {k: [row[k] for row in rows] for k in rows[0]}
        writer, size = np.array(cols["writer"]), np.array(cols["size"])
        slant = st.slant[writer] + np.array(cols["slant_jitter"])
        px, strokes, sparse, knots = place(digit, cols["allograph"], st, writer, np.stack(cols["jitter"]), slant,
                                    np.array(cols["rotation"]), size, np.stack(cols["centre"]), size_px)  # fmt: skip
        tempo = np.array([TEMPO.get(s, 1.0) for s in cols["surface"]])
        speed = st.speed[writer] * tempo * size * size_px  # pixels per second
        knot_t, knot_u, times = clock(px, strokes, knots, speed, st.pause[writer])
        usable = self.window_seconds - 0.3
        factor = np.minimum(1.0, usable / knot_t[:, -1])  # fast enough to finish inside the window
        offset = 0.15 + np.array(cols["start"]) * (usable - knot_t[:, -1] * factor)
        knot_t, times = knot_t * factor[:, None] + offset[:, None], times * factor[:, None] + offset[:, None]
        geom = Geometry(px, strokes, sparse, knot_t, knot_u, times, st.width[writer] * size * size_px)
        texts = [caption(int(d), row["ink"], row["surface"], size_name(s), row["lighting"], r)
                 for d, row, s, r in zip(digit, rows, size, _rngs(entropy, "text"), strict=True)]  # fmt: skip
        return Instances(
            split=split, seed=seed, ids=[f"{split}-s{seed}-{i:06d}" for i in range(n)], digit=digit,
            writer=writer, voice=[self.writer_voice[int(w)] for w in writer], allograph=np.array(cols["allograph"]),
            surface=cols["surface"], ink=cols["ink"], lighting=cols["lighting"], relief=cols["relief"], size=size,
            slant=slant, pen_elevation=st.elevation[writer], pen_azimuth=st.azimuth[writer], captions=texts, geometry=geom,
            metres_per_px=np.array([FRAME_METRES[s] for s in cols["surface"]]) / size_px, entropy=entropy,
            image_size=size_px, window_seconds=self.window_seconds, sample_rate=self.sample_rate,
            video_fps=self.video_fps, imu_rate=self.imu_rate,
        )  # fmt: skip

    def _draw_attributes(self, r: np.random.Generator, digit: int, split: str) -> dict:
        """One instance's attribute draws (a fixed order of draws from its own stream)."""
        writers, st = self.split_writers[split], self.styles
        w = int(writers[r.integers(len(writers))])
        loyal = r.random() < st.loyalty[w]
        allograph = int(st.preferred[w, digit]) if loyal else int(r.integers(N_ALLOGRAPHS_PER_DIGIT[digit]))
        surface = SURFACES[int(r.integers(len(SURFACES)))]
        inks = inks_for(surface)
        size = float(r.uniform(0.5, 0.8))
        return {
            "writer": w, "allograph": allograph, "surface": surface, "ink": inks[int(r.integers(len(inks)))],
            "lighting": LIGHT_NAMES[int(r.integers(len(LIGHT_NAMES)))], "relief": relief.RELIEFS[int(r.integers(2))],
            "jitter": wobble_fields(r, 1, 0.004, 0.015)[0], "slant_jitter": float(r.normal(0, 3)),
            "rotation": float(r.normal(0, 0.05)), "size": size, "start": float(r.random()),
            "centre": self.image_size * (0.5 + r.uniform(-1, 1, 2) * (1 - size) * 0.3),
        }  # fmt: skip


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _split(split: str) -> str:
    _check(split in SPLITS, f"split must be one of {sorted(SPLITS)}, got {split!r}")
    return split


def _modalities(modalities) -> set:
    if isinstance(modalities, str):
        modalities = (modalities,)
    want = set(modalities)
    _check(
        want <= set(MODALITIES), f"unknown modalities {sorted(want - set(MODALITIES))}; known: {MODALITIES}"
    )
    return want
