"""Text: captions of instances from many templates, and class prompts for zero-shot classification."""

import numpy as np

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SURFACE_PHRASES = {
    "white paper": "white paper", "ruled paper": "ruled paper", "grid paper": "grid paper",
    "yellow notepad": "a yellow notepad", "kraft paper": "brown kraft paper", "whiteboard": "a whiteboard",
    "chalkboard": "a chalkboard", "wood": "a wooden board",
}  # fmt: skip

# {word}: "seven", {numeral}: "7", {ink}: "blue", {medium}: "ink" or "chalk", {surface}, {size}, {light}
CAPTION_TEMPLATES = [
    "the number {word}",
    "a handwritten {numeral}",
    "the digit {numeral} written in {ink} {medium}",
    "a photo of the number {word}",
    "the digit {word}",
    "{word}",
    "number {numeral}",
    "a handwritten digit {numeral} on {surface}",
    "a {size} {numeral} written on {surface}",
    "the numeral {word} in {ink} {medium}",
    "someone wrote the number {word}",
    "a picture of a handwritten {word}",
    "a {ink} {numeral} on {surface}",
    "the digit {numeral} under {light}",
    "a close-up of the handwritten number {word}",
    "{numeral}, written by hand",
    "a quick sketch of the digit {word}",
    "the figure {numeral} drawn on {surface}",
    "a {size} handwritten {word} in {ink} {medium}",
    "a photo of a {numeral} on {surface} in {light}",
    "the number {word} written in {medium} on {surface}",
    "a hand-drawn {word}",
    "a {word} written in {ink}",
    "the digit {numeral} in {ink} {medium} on {surface}, {light}",
    "a snapshot of someone's handwritten {numeral}",
    "the handwritten numeral {numeral}",
    "a single digit: {word}",
    "a messy {numeral} written on {surface}",
    "a neat {word} in {ink} {medium}",
    "the number {word}, seen on {surface} in {light}",
]
# attribute-free templates for class prompts (zero-shot classifiers average over them); `{}` is the class word, as
# in `bindkit eval --templates` files, so the demo's classifier and `bindkit eval`'s are the same
PROMPT_TEMPLATES = [
    "the number {}",
    "a handwritten {}",
    "a photo of the digit {}",
    "the digit {}",
    "a drawing of the number {}",
    "a handwritten digit {}",
    "a picture of a handwritten {}",
    "someone writing the number {}",
]


def fill(template: str, digit: int, **attrs: str) -> str:
    """Fill one template for a digit and attributes (ink, medium, surface, size, light)."""
    return template.format(word=WORDS[digit], numeral=str(digit), **attrs)


def caption(digit: int, ink: str, surface: str, size: str, light: str, rng: np.random.Generator) -> str:
    """One caption for an instance, template chosen by rng."""
    template = CAPTION_TEMPLATES[int(rng.integers(len(CAPTION_TEMPLATES)))]
    medium = "chalk" if surface == "chalkboard" else "ink"
    return fill(
        template, digit, ink=ink, medium=medium, surface=SURFACE_PHRASES[surface], size=size, light=light
    )


def class_prompts(templates: list[str] | None = None) -> list[list[str]]:
    """Prompts per class, [10][len(templates)]: each template's `{}` filled with the class word ("seven")."""
    templates = PROMPT_TEMPLATES if templates is None else templates
    for t in templates:
        if not isinstance(t, str) or t.count("{}") != 1:
            raise ValueError(f"prompt template {t!r} must hold exactly one '{{}}' for the class word")
    return [[t.format(WORDS[d]) for t in templates] for d in range(10)]
