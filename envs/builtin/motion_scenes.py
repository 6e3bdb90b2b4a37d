"""Scenes for ``motion-video``: moving flat-colour shapes, the question asked about them,
and the animated GIF that shows them.

An object moves a whole number of pixels per frame in one of four (hard: eight)
directions; on hard one object turns back mid-way. Objects never leave the picture and
never touch in any frame (rejection sampling with bounded tries), so each is exactly the
pixels of its colour in every frame.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Literal, NamedTuple

from pydantic import model_validator

from gymbus.envs.base import Difficulty
from gymbus.envs.builtin.images import RGB, Canvas, ShapeKind
from gymbus.envs.builtin.video import direction_of, encode_gif
from gymbus.runtime.messages import Frozen

__all__ = [
    "BACKGROUND",
    "COLOURS",
    "FRAME_MS",
    "KINDS",
    "SIZE",
    "MotionScene",
    "MotionTask",
    "MovingObject",
    "QuestionKind",
    "generate",
    "render",
]

QuestionKind = Literal["direction", "farthest", "bounce"]
ColourName = Literal["red", "blue", "green", "orange", "purple"]
COLOURS: dict[ColourName, RGB] = {
    "red": (220, 40, 40),
    "blue": (40, 90, 220),
    "green": (40, 160, 60),
    "orange": (245, 140, 20),
    "purple": (140, 60, 190),
}
KINDS: tuple[ShapeKind, ...] = ("circle", "square", "triangle")
BACKGROUND: RGB = (255, 255, 255)
SIZE = 128  # px, the video is square
FRAME_MS = 100
_MARGIN, _GAP = 2, 3  # px from the edge, and between objects in every frame
_CLEAR_WIN = 8.0  # px: the farthest object beats the runner-up by at least this much


class MovingObject(Frozen):
    """A shape whose top-left corner starts at (x, y) and moves ``velocity`` px per frame;
    from frame ``turn_at`` on it moves ``velocity_after`` instead (a change of direction)."""

    colour: ColourName
    kind: ShapeKind
    size: int
    x: int
    y: int
    velocity: tuple[int, int]
    turn_at: int | None = None
    velocity_after: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _turn_is_whole(self) -> MovingObject:
        if (self.turn_at is None) != (self.velocity_after is None):
            raise ValueError("turn_at and velocity_after go together")
        return self

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"

    def position(self, frame: int) -> tuple[int, int]:
        (vx, vy), turn = self.velocity, self.turn_at
        if turn is None or self.velocity_after is None or frame <= turn:
            return self.x + vx * frame, self.y + vy * frame
        wx, wy = self.velocity_after
        return self.x + vx * turn + wx * (frame - turn), self.y + vy * turn + wy * (frame - turn)

    def displacement(self, frames: int) -> tuple[int, int]:
        x, y = self.position(frames - 1)
        return x - self.x, y - self.y


def _apart(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    """Two boxes (x, y, size) at least the gap apart."""
    (ax, ay, asz), (bx, by, bsz) = a, b
    return (
        ax + asz + _GAP <= bx
        or bx + bsz + _GAP <= ax
        or ay + asz + _GAP <= by
        or by + bsz + _GAP <= ay
    )


class MotionScene(Frozen):
    frames: int
    objects: tuple[MovingObject, ...]

    @model_validator(mode="after")
    def _drawable(self) -> MotionScene:
        if len({o.colour for o in self.objects}) != len(self.objects):
            raise ValueError("object colours must be distinct (objects are named by colour)")
        for f in range(self.frames):
            boxes = [(*o.position(f), o.size) for o in self.objects]
            if any(not _MARGIN <= v <= SIZE - _MARGIN - s for x, y, s in boxes for v in (x, y)):
                raise ValueError(f"an object leaves the picture in frame {f}")
            if any(not _apart(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]):
                raise ValueError(f"objects touch in frame {f}")
        return self


class MotionTask(Frozen):
    scene: MotionScene
    question: str
    question_kind: QuestionKind
    subject: str | None  # the object the question is about, if one
    answer: str


class _Level(NamedTuple):
    frames: int
    movers: int
    static: int
    sizes: tuple[int, int]
    speeds: tuple[int, int]  # px per frame along each moving axis
    diagonal: bool
    turning: bool  # one mover turns back mid-way
    kinds: tuple[QuestionKind, ...]


_LEVELS: dict[Difficulty, _Level] = {
    "easy": _Level(12, 1, 0, (16, 22), (4, 6), False, False, ("direction",)),
    "medium": _Level(16, 2, 1, (14, 18), (3, 5), False, False, ("direction", "farthest")),
    "hard": _Level(20, 3, 0, (12, 16), (2, 4), True, True, ("direction", "farthest", "bounce")),
}
_STRAIGHT = ((1, 0), (-1, 0), (0, 1), (0, -1))
_DIAGONAL = ((1, 1), (1, -1), (-1, 1), (-1, -1))


Velocity = tuple[int, int]


def _velocities(
    rng: random.Random, level: _Level, turning: bool
) -> tuple[Velocity, int | None, Velocity | None]:
    """(velocity, turn_at, velocity_after) of one mover."""
    ux, uy = rng.choice(_STRAIGHT + _DIAGONAL if level.diagonal else _STRAIGHT)
    speed = rng.randint(*level.speeds)
    velocity = (ux * speed, uy * speed)
    if not turning:
        return velocity, None, None
    turn_at = rng.randint(level.frames // 3, 2 * level.frames // 3)
    bounces = [(-velocity[0], -velocity[1])]
    if ux and uy:  # a diagonal mover may also bounce off a "wall": one component flips
        bounces += [(-velocity[0], velocity[1]), (velocity[0], -velocity[1])]
    return velocity, turn_at, rng.choice(bounces)


def _place(rng: random.Random, level: _Level) -> list[MovingObject] | None:
    """The scene's objects at random spots that keep them apart in every frame, or
    ``None`` when this draw did not fit (bounded tries: deterministic)."""
    colours = rng.sample(list(COLOURS), level.movers + level.static)
    turner = rng.randrange(level.movers) if level.turning else -1
    placed: list[MovingObject] = []
    for i, colour in enumerate(colours):
        velocity, turn_at, after = (
            _velocities(rng, level, i == turner) if i < level.movers else ((0, 0), None, None)
        )
        size, kind = rng.randint(*level.sizes), rng.choice(KINDS)
        probe = MovingObject(
            colour=colour,
            kind=kind,
            size=size,
            x=0,
            y=0,
            velocity=velocity,
            turn_at=turn_at,
            velocity_after=after,
        )
        path = [probe.position(f) for f in range(level.frames)]
        xs, ys = [p[0] for p in path], [p[1] for p in path]
        x_range = (_MARGIN - min(xs), SIZE - _MARGIN - size - max(xs))
        y_range = (_MARGIN - min(ys), SIZE - _MARGIN - size - max(ys))
        if x_range[0] > x_range[1] or y_range[0] > y_range[1]:
            return None
        for _ in range(200):
            candidate = probe.model_copy(
                update={"x": rng.randint(*x_range), "y": rng.randint(*y_range)}
            )
            if all(
                _apart((*candidate.position(f), size), (*other.position(f), other.size))
                for other in placed
                for f in range(level.frames)
            ):
                placed.append(candidate)
                break
        else:
            return None
    return placed


def _distance(obj: MovingObject, frames: int) -> float:
    """How far ``obj`` ends from where it started."""
    return math.hypot(*obj.displacement(frames))


def _travelled(obj: MovingObject, frames: int) -> float:
    """The length of ``obj``'s path."""
    return sum(math.dist(obj.position(f), obj.position(f + 1)) for f in range(frames - 1))


def _clear_winner(scene: MotionScene, measure: Callable[[MovingObject, int], float]) -> bool:
    first, second = sorted((measure(o, scene.frames) for o in scene.objects), reverse=True)[:2]
    return first - second >= _CLEAR_WIN


def _question(
    rng: random.Random, scene: MotionScene, kind: QuestionKind, diagonal: bool
) -> tuple[str, str | None, str] | None:
    """The question's text, subject and answer; ``None`` when this scene cannot ask it:
    no clear farthest object, or (when an object turns back) that object did not travel the
    longest path — then the question separates "ended farthest" from "travelled most"."""
    movers = [o for o in scene.objects if o.velocity != (0, 0)]
    straight = [o for o in movers if o.turn_at is None]
    if kind == "farthest":
        if not _clear_winner(scene, _distance):
            return None
        farthest = max(scene.objects, key=lambda o: _distance(o, scene.frames))
        turners = [o for o in movers if o.turn_at is not None]
        if turners:  # the object that turned back travelled farthest, but did not get far
            longest = max(scene.objects, key=lambda o: _travelled(o, scene.frames))
            if (
                longest is not turners[0]
                or longest is farthest
                or not _clear_winner(scene, _travelled)
            ):
                return None
        text = (
            "Which object ended up farthest from where it started? Answer with its colour "
            "and shape."
        )
        return text, None, farthest.name
    if kind == "bounce":
        turner = next(o for o in movers if o.turn_at is not None)
        subject = turner if rng.random() < 0.5 else rng.choice(straight)
        text = (
            f"Did the {subject.name} change direction during the video (for example by "
            "turning back)? Answer yes or no."
        )
        return text, subject.name, "yes" if subject is turner else "no"
    subject = rng.choice(straight)
    label = direction_of(*subject.displacement(scene.frames))
    assert label is not None  # a straight mover moves
    options = "left, right, up, down" + (
        ", up-left, up-right, down-left, down-right" if diagonal else ""
    )
    text = f"Which direction did the {subject.name} move? Answer with one of: {options}."
    return text, subject.name, label


def generate(seed: int, difficulty: Difficulty) -> MotionTask:
    """The task for ``seed`` at ``difficulty`` (deterministic)."""
    rng = random.Random(seed)
    level = _LEVELS[difficulty]
    kind = rng.choice(level.kinds)
    for _ in range(1000):
        objects = _place(rng, level)
        if objects is None:
            continue
        scene = MotionScene(frames=level.frames, objects=tuple(objects))
        asked = _question(rng, scene, kind, level.diagonal)
        if asked is not None:
            text, subject, answer = asked
            return MotionTask(
                scene=scene, question=text, question_kind=kind, subject=subject, answer=answer
            )
    raise RuntimeError(f"no {difficulty} scene for seed {seed} in 1000 draws")  # never seen


def render(scene: MotionScene) -> bytes:
    """The scene as an animated GIF (deterministic: same scene, same bytes)."""
    palette = [BACKGROUND, *(COLOURS[o.colour] for o in scene.objects)]
    images = []
    for f in range(scene.frames):
        canvas = Canvas(SIZE, SIZE, palette)
        for ink, obj in enumerate(scene.objects, start=1):
            canvas.shape(obj.kind, *obj.position(f), obj.size, ink)
        images.append(canvas.image)
    return encode_gif(images, FRAME_MS)
