"""``shape-count``: count coloured shapes in an image (multi-modal perception).

The policy sees a PNG of non-overlapping circles, squares and triangles in a few colours on
a white background, and one question: how many ``<colour> <shape>s``, how many shapes of
one colour or one kind, how many in total, or "are there more ``A`` than ``B``?" (yes/no).
The answer is only in the pixels: the text names the colours used but nothing about where
or how many. Difficulty: easy has 4-7 large shapes in 2 colours; medium 8-12 mid-size
shapes in 3 colours and adds colour/kind totals and comparisons; hard 14-20 small shapes in
5 colours including a near pair (red/orange, green/teal or blue/purple) the question asks
about.

No core capability is claimed: the task is perception (the ``multi-modal`` structure).
Verifier: exact match of the last integer of the final answer (yes/no questions: the final
answer must say exactly one of "yes"/"no"). Null check: "I can't help with that." holds no
integer and no yes/no, so it scores 0. A reader that confuses the near colours scores 0 on
most hard tasks.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Literal, NamedTuple

from pydantic import model_validator

from gymbus.envs.base import Difficulty
from gymbus.envs.builtin.images import (
    RGB,
    Canvas,
    ShapeKind,
    classify_shape,
    components,
    decode_png,
    first_image,
    image_question,
)
from gymbus.envs.media_env import MediaEnvironment
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.verifiers import (
    ExactMatchVerifier,
    SubScore,
    SubScorer,
    final_answer,
    last_integer,
)
from gymbus.envs.verifiers.exact import Extractor
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.limits import Limits
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import AssistantMessage, Frozen
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode

__all__ = [
    "COLOURS",
    "Shape",
    "ShapeCount",
    "ShapeCountSolver",
    "ShapeScene",
    "ShapeTask",
    "answer_question",
    "count_shapes",
    "generate",
    "prompt",
    "render",
    "yes_or_no",
]

QuestionKind = Literal["count", "count-colour", "count-kind", "total", "compare"]

BACKGROUND: RGB = (255, 255, 255)
ColourName = Literal["red", "orange", "yellow", "green", "teal", "blue", "purple"]
COLOURS: dict[ColourName, RGB] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (230, 200, 20),
    "green": (40, 160, 60),
    "teal": (20, 150, 150),
    "blue": (40, 90, 220),
    "purple": (140, 60, 190),
}
_BASIC: tuple[ColourName, ...] = ("red", "yellow", "green", "blue")
_NEAR_PAIRS: tuple[tuple[ColourName, ColourName], ...] = (
    ("red", "orange"),
    ("green", "teal"),
    ("blue", "purple"),
)
KINDS: tuple[ShapeKind, ...] = ("circle", "square", "triangle")
WIDTH, HEIGHT = 320, 240
_MARGIN, _GAP = 4, 3  # px from the edge, and between shapes (so no two ever touch)


class Shape(Frozen):
    kind: ShapeKind
    colour: ColourName
    x: int
    y: int
    size: int


class ShapeScene(Frozen):
    colours: tuple[ColourName, ...]  # the colours in play, as named in the prompt
    shapes: tuple[Shape, ...]

    @model_validator(mode="after")
    def _drawable(self) -> ShapeScene:
        if len(set(self.colours)) != len(self.colours):
            raise ValueError("colours must be distinct")
        if any(s.colour not in self.colours for s in self.shapes):
            raise ValueError("every shape's colour must be one of the scene's colours")
        return self

    def count(self, colour: str | None = None, kind: str | None = None) -> int:
        return sum(
            1
            for s in self.shapes
            if (colour is None or s.colour == colour) and (kind is None or s.kind == kind)
        )


class ShapeTask(Frozen):
    scene: ShapeScene
    question: str
    question_kind: QuestionKind
    answer: str


class _Level(NamedTuple):
    shapes: tuple[int, int]  # how many (inclusive range)
    sizes: tuple[int, int]  # side of a shape's box, px
    kinds: tuple[QuestionKind, ...]


_LEVELS: dict[Difficulty, _Level] = {
    "easy": _Level((4, 7), (36, 56), ("count", "total")),
    "medium": _Level((8, 12), (22, 40), ("count", "count-colour", "count-kind", "compare")),
    "hard": _Level((14, 20), (12, 26), ("count", "count-colour", "compare")),
}


def _colours(rng: random.Random, difficulty: Difficulty) -> tuple[ColourName, ...]:
    if difficulty == "easy":
        return tuple(rng.sample(_BASIC, 2))
    if difficulty == "medium":
        return tuple(rng.sample((*_BASIC, "purple"), 3))
    near = rng.choice(_NEAR_PAIRS)
    others = [c for c in COLOURS if c not in near]
    return (*near, *rng.sample(others, 3))


def _place(
    rng: random.Random, n: int, sizes: tuple[int, int], colours: tuple[ColourName, ...]
) -> list[Shape]:
    """Up to ``n`` shapes at random non-overlapping spots (bounded tries: deterministic)."""
    shapes: list[Shape] = []
    for _ in range(400 * n):
        if len(shapes) == n:
            break
        size = rng.randint(*sizes)
        x = rng.randint(_MARGIN, WIDTH - _MARGIN - size)
        y = rng.randint(_MARGIN, HEIGHT - _MARGIN - size)
        if all(
            x + size + _GAP <= s.x
            or s.x + s.size + _GAP <= x
            or y + size + _GAP <= s.y
            or s.y + s.size + _GAP <= y
            for s in shapes
        ):
            kind = rng.choice(KINDS)
            shapes.append(Shape(kind=kind, colour=rng.choice(colours), x=x, y=y, size=size))
    return shapes


def _question(
    rng: random.Random, scene: ShapeScene, kind: QuestionKind, focus: tuple[ColourName, ...]
) -> tuple[QuestionKind, str, str]:
    """The question's kind, text and answer; ``focus`` holds the colours it may ask about.
    A kind the scene cannot support (nothing to compare) falls back to ``total``."""
    number = " Answer with just the number."
    present = sorted({(s.colour, s.kind) for s in scene.shapes if s.colour in focus})
    if kind == "count" and present:
        colour, shape = rng.choice(present)
        text = f"How many {colour} {shape}s are in the image?{number}"
        return kind, text, str(scene.count(colour, shape))
    if kind == "count-colour" and present:
        colour = rng.choice(sorted({c for c, _ in present}))
        text = f"How many {colour} shapes (of any kind) are in the image?{number}"
        return kind, text, str(scene.count(colour))
    if kind == "count-kind":
        shape = rng.choice(sorted({s.kind for s in scene.shapes}))
        text = f"How many {shape}s (of any colour) are in the image?{number}"
        return kind, text, str(scene.count(kind=shape))
    if kind == "compare":
        groups = [(c, k) for c in focus for k in KINDS]
        pairs = [(a, b) for a in groups for b in groups if scene.count(*a) != scene.count(*b)]
        if pairs:  # both orders of each pair are in: yes and no are equally likely
            (ca, ka), (cb, kb) = rng.choice(pairs)
            text = f"Are there more {ca} {ka}s than {cb} {kb}s in the image? Answer yes or no."
            return kind, text, "yes" if scene.count(ca, ka) > scene.count(cb, kb) else "no"
    text = f"How many shapes are in the image in total?{number}"
    return "total", text, str(len(scene.shapes))


def generate(seed: int, difficulty: Difficulty) -> ShapeTask:
    """The task for ``seed`` at ``difficulty`` (deterministic)."""
    rng = random.Random(seed)
    level = _LEVELS[difficulty]
    colours = _colours(rng, difficulty)
    focus = colours[:2] if difficulty == "hard" else colours  # hard asks about the near pair
    colours = tuple(rng.sample(colours, len(colours)))  # the prompt lists them shuffled
    shapes = _place(rng, rng.randint(*level.shapes), level.sizes, colours)
    scene = ShapeScene(colours=colours, shapes=tuple(shapes))
    kind, text, answer = _question(rng, scene, rng.choice(level.kinds), focus)
    return ShapeTask(scene=scene, question=text, question_kind=kind, answer=answer)


def render(scene: ShapeScene) -> bytes:
    """The scene as a PNG (deterministic: same scene, same bytes)."""
    canvas = Canvas(WIDTH, HEIGHT, [BACKGROUND, *(COLOURS[c] for c in scene.colours)])
    for shape in scene.shapes:
        ink = 1 + scene.colours.index(shape.colour)
        canvas.shape(shape.kind, shape.x, shape.y, shape.size, ink)
    return canvas.png()


def prompt(task: ShapeTask) -> str:
    colours = ", ".join(task.scene.colours)
    return (
        f"The image shows circles, squares and triangles; each is one of these colours: "
        f"{colours}. "
        f"{task.question}"
    )


_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def yes_or_no(text: str) -> str | None:
    """``"yes"`` or ``"no"`` when the text says exactly one of them (as a word), else
    ``None``: hedging ("yes or no?", "yes... no") is not an answer."""
    said = {m.lower() for m in _YES_NO.findall(text)}
    return said.pop() if len(said) == 1 else None


def _evidence(extract: Extractor, task: ShapeTask) -> SubScorer:
    """Sub-score ``answer_parsed`` (an answer could be read at all) and the scene's counts."""
    counts = {
        f"{colour} {kind}": task.scene.count(colour, kind)
        for colour in task.scene.colours
        for kind in KINDS
    }

    def sub_score(episode: CompletedEpisode) -> SubScore:
        answer = final_answer(episode.transcript)
        parsed = answer is not None and extract(answer.text) is not None
        return SubScore(
            scores={"answer_parsed": 1.0 if parsed else 0.0},
            evidence={"question_kind": task.question_kind, "counts": counts},
        )

    return sub_score


class ShapeCount(MediaEnvironment):
    name = "shape-count"
    description = (
        "Count the circles, squares and triangles of given colours in a seeded flat-colour "
        "image (or say which of two groups is larger). Reward: the exact count, or yes/no."
    )
    metadata = EnvMetadata(
        rollout_structures=("multi-modal",),
        core_capabilities=(),
        knowledge_domain="visual-reasoning",
        task_type="visual-counting",
        verification_method="exact-match",
    )

    def task(self, seed: int) -> Task:
        data = generate(seed, self.difficulty)
        return self.make_task(seed, data)

    def episode(self, task: Task) -> EpisodeSpec:
        data = self.task_data(task, ShapeTask)
        extract = yes_or_no if data.question_kind == "compare" else last_integer
        return EpisodeSpec(
            task=task,
            messages=image_question(self.media, prompt(data), render(data.scene)),
            verifier=ExactMatchVerifier(
                data.answer, extract=extract, sub_scorers=(_evidence(extract, data),)
            ),
            solver=ShapeCountSolver(self.media),
            limits=Limits(max_turns=1),
            metadata=self.metadata.model_dump(mode="json"),
            state=data.scene,
        )


_KIND = "(circle|square|triangle)"
_ASKS: tuple[tuple[QuestionKind, re.Pattern[str]], ...] = (
    ("count", re.compile(rf"How many (\w+) {_KIND}s are in the image\?")),
    ("count-colour", re.compile(r"How many (\w+) shapes \(of any kind\)")),
    ("count-kind", re.compile(rf"How many {_KIND}s \(of any colour\)")),
    ("compare", re.compile(rf"Are there more (\w+) {_KIND}s than (\w+) {_KIND}s")),
    ("total", re.compile(r"How many shapes are in the image in total\?")),
)
_NAMES: dict[RGB, str] = {rgb: name for name, rgb in COLOURS.items()}


class ShapeCountSolver:
    """The reference solver: finds the question in the conversation, reads the image's
    bytes from the media store through the message's :class:`MediaRef` (as a model would
    perceive it) and counts what it sees (:func:`count_shapes`). Never reads the task; a
    pure function of the conversation."""

    def __init__(self, media: MediaStore) -> None:
        self._media = media

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        found = first_image(conversation, self._media)
        if found is None:
            return AssistantMessage(content="I cannot see an image to count shapes in.")
        message, png = found
        answer = answer_question(message.text, count_shapes(png))
        return AssistantMessage(content=answer or "I do not understand the question.")


def count_shapes(png: bytes) -> Counter[tuple[str, str]]:
    """(colour name, shape kind) → how many, read off the image's pixels: each connected
    region of one colour is a shape, classified by how much of its bounding box it fills.
    Regions in colours outside :data:`COLOURS` are ignored."""
    raster = decode_png(png)
    counts: Counter[tuple[str, str]] = Counter()
    for region in components(raster, ignore={raster.most_common_index()}):
        name = _NAMES.get(raster.palette[region.index])
        if name is not None:
            counts[(name, classify_shape(region))] += 1
    return counts


def answer_question(question: str, counts: Counter[tuple[str, str]]) -> str | None:
    """The answer to this environment's ``question`` given the ``(colour, kind)`` counts,
    or ``None`` for a question it does not ask."""
    for kind, pattern in _ASKS:
        asked = pattern.search(question)
        if asked is not None:
            return _answer(kind, asked.groups(), counts)
    return None


def _answer(kind: QuestionKind, args: tuple[str, ...], counts: Counter[tuple[str, str]]) -> str:
    if kind == "count":
        return str(counts[(args[0], args[1])])
    if kind == "count-colour":
        return str(sum(n for (colour, _), n in counts.items() if colour == args[0]))
    if kind == "count-kind":
        return str(sum(n for (_, shape), n in counts.items() if shape == args[0]))
    if kind == "compare":
        return "yes" if counts[(args[0], args[1])] > counts[(args[2], args[3])] else "no"
    return str(sum(counts.values()))
