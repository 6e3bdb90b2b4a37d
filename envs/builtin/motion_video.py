"""``motion-video``: say how objects moved in a short video (multi-modal perception over
time).

The policy sees an animated GIF (128 by 128 px, 12-20 frames of 100 ms) of flat-colour
squares, circles and triangles on white, and one question: which direction did one object
move, which object ended up farthest from where it started, or did an object change
direction.
The prompt names the objects but says nothing about their motion: that is only in the
frames, and no single frame answers it — the question is about change over time.

Difficulty: easy has one object moving in a straight line (left, right, up or down);
medium two moving objects and a static distractor; hard three moving objects that may go
diagonally (eight directions), one of which turns back mid-way — it travels far but may
end near its start, and only frames from the middle show it turning.

No core capability is claimed: the task is perception (the ``multi-modal`` structure).
Verifier: exact match of a normalised label. A direction is read from the final answer's
direction words (``up``/``upward``/``top``/``north``, ``down``..., ``left``/``west``,
``right``/``east``); a compound ("up-left", "upper left", "up and to the left",
"north-west") is one diagonal. Exactly one direction must be named: "left or up" is
hedging and scores 0. An object is named by colour and shape ("red square"), or by colour
alone (colours are unique in a scene); naming two objects scores 0. Yes/no questions need
exactly one of "yes"/"no". Null check: "I can't help with that." names no direction,
object, yes or no, so it scores 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from gymbus.envs.builtin.motion_scenes import (
    COLOURS,
    FRAME_MS,
    KINDS,
    MotionScene,
    MotionTask,
    MovingObject,
    QuestionKind,
    generate,
    render,
)
from gymbus.envs.builtin.shape_count import yes_or_no
from gymbus.envs.builtin.video import (
    Point,
    changes_direction,
    decode_gif,
    direction_label,
    direction_of,
    first_video,
    track,
    video_question,
)
from gymbus.envs.media_env import MediaEnvironment
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.verifiers import ExactMatchVerifier, SubScore, SubScorer, final_answer
from gymbus.envs.verifiers.exact import Extractor
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.limits import Limits
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import AssistantMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode

__all__ = [
    "MotionScene",
    "MotionTask",
    "MotionVideo",
    "MotionVideoSolver",
    "MovingObject",
    "answer_question",
    "generate",
    "named_object",
    "prompt",
    "render",
    "tracks_by_colour",
]

_NAME = re.compile(rf"\b({'|'.join(COLOURS)}) ({'|'.join(KINDS)})s?\b")
_COLOUR = re.compile(rf"\b({'|'.join(COLOURS)})\b")


def _listing(names: list[str]) -> str:
    named = [f"a {n}" for n in names]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


def prompt(task: MotionTask) -> str:
    scene = task.scene
    return (
        f"The video (an animated GIF, {scene.frames * FRAME_MS / 1000:g} seconds) shows "
        f"{_listing([o.name for o in scene.objects])} on a white background. {task.question}"
    )


def named_object(kinds: dict[str, str]) -> Extractor:
    """An extractor of the one object an answer names, for a scene whose objects have the
    colours (and shapes) in ``kinds``: "the red square" → ``"red square"``; a colour alone
    names that colour's object. Naming two objects (or none) gives ``None``."""

    def extract(text: str) -> str | None:
        named = {f"{c} {k}" for c, k in _NAME.findall(text.lower())}
        if not named:
            named = {f"{c} {kinds[c]}" for c in _COLOUR.findall(text.lower()) if c in kinds}
        return named.pop() if len(named) == 1 else None

    return extract


def _extractor(task: MotionTask) -> Extractor:
    if task.question_kind == "bounce":
        return yes_or_no
    if task.question_kind == "farthest":
        return named_object({o.colour: o.kind for o in task.scene.objects})
    return direction_label


def _evidence(extract: Extractor, task: MotionTask) -> SubScorer:
    """Sub-score ``answer_parsed``; each object's start and end (centre) and turn."""
    scene = task.scene
    motion = {
        o.name: {
            "from": [o.x + o.size / 2, o.y + o.size / 2],
            "to": [p + o.size / 2 for p in o.position(scene.frames - 1)],
            "changed_direction": o.turn_at is not None,
        }
        for o in scene.objects
    }

    def sub_score(episode: CompletedEpisode) -> SubScore:
        answer = final_answer(episode.transcript)
        parsed = answer is not None and extract(answer.text) is not None
        return SubScore(
            scores={"answer_parsed": 1.0 if parsed else 0.0},
            evidence={"question_kind": task.question_kind, "motion": motion},
        )

    return sub_score


class MotionVideo(MediaEnvironment):
    name = "motion-video"
    description = (
        "Watch a seeded animated GIF of moving coloured shapes and say which way one moved, "
        "which ended farthest from its start, or whether one turned back. Reward: exact "
        "match of the direction, object name or yes/no."
    )
    metadata = EnvMetadata(
        rollout_structures=("multi-modal",),
        core_capabilities=(),
        knowledge_domain="visual-reasoning",
        task_type="motion-tracking",
        verification_method="exact-match",
    )

    def task(self, seed: int) -> Task:
        data = generate(seed, self.difficulty)
        return self.make_task(seed, data)

    def episode(self, task: Task) -> EpisodeSpec:
        data = self.task_data(task, MotionTask)
        extract = _extractor(data)
        return EpisodeSpec(
            task=task,
            messages=video_question(self.media, prompt(data), render(data.scene)),
            verifier=ExactMatchVerifier(
                data.answer, extract=extract, sub_scorers=(_evidence(extract, data),)
            ),
            solver=MotionVideoSolver(self.media),
            limits=Limits(max_turns=1),
            metadata=self.metadata.model_dump(mode="json"),
            state=data.scene,
        )


_ASKS: tuple[tuple[QuestionKind, re.Pattern[str]], ...] = (
    ("direction", re.compile(r"Which direction did the (\w+ \w+) move\?")),
    ("farthest", re.compile(r"Which object ended up farthest from where it started\?")),
    ("bounce", re.compile(r"Did the (\w+ \w+) change direction")),
)


class MotionVideoSolver:
    """The reference solver: finds the question in the conversation, reads the GIF from the
    media store through the message's :class:`MediaRef` (as a model would watch it),
    tracks each named object's centroid by its exact colour through every frame and
    answers from the tracks. Never reads the task; a pure function of the conversation."""

    def __init__(self, media: MediaStore) -> None:
        self._media = media

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        found = first_video(conversation, self._media)
        if found is None:
            return AssistantMessage(content="I cannot see a video to watch.")
        message, gif = found
        answer = answer_question(message.text, tracks_by_colour(gif))
        return AssistantMessage(content=answer or "I do not understand the question.")


def tracks_by_colour(gif: bytes) -> dict[str, list[Point]]:
    """Colour name → the centroid of that colour's pixels in every frame, for each of
    :data:`COLOURS` present in every frame of the video."""
    frames = decode_gif(gif)
    tracks = {name: track(frames, rgb) for name, rgb in COLOURS.items()}
    return {name: path for name, path in tracks.items() if path is not None}


def answer_question(question: str, tracks: Mapping[str, Sequence[Point]]) -> str | None:
    """The answer to this environment's ``question`` (which names the objects) given the
    colours' centroid tracks, or ``None`` for a question it does not ask or an object it
    cannot find."""
    names = {colour: f"{colour} {kind}" for colour, kind in _NAME.findall(question)}
    for kind, pattern in _ASKS:
        asked = pattern.search(question)
        if asked is None:
            continue
        if kind == "farthest":
            moved = {
                name: math.dist(tracks[colour][0], tracks[colour][-1])
                for colour, name in names.items()
                if colour in tracks
            }
            return max(moved, key=moved.__getitem__) if moved else None
        path = tracks.get(asked.group(1).split()[0])
        if not path:
            return None
        if kind == "bounce":
            return "yes" if changes_direction(path) else "no"
        (x0, y0), (x1, y1) = path[0], path[-1]
        return direction_of(x1 - x0, y1 - y0)
    return None
