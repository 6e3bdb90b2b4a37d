import hashlib
import itertools
import math
from collections.abc import Callable, Sequence

import pytest

import gymbus
from gymbus.envs.builtin.motion_scenes import COLOURS, SIZE
from gymbus.envs.builtin.motion_video import (
    MotionScene,
    MotionTask,
    MotionVideo,
    MotionVideoSolver,
    MovingObject,
    answer_question,
    generate,
    named_object,
    prompt,
    render,
    tracks_by_colour,
)
from gymbus.envs.builtin.video import GIF, Point, decode_gif, first_video
from gymbus.envs.metadata import EnvMetadata
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import TextPart, UserMessage, VideoPart
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.transcript import Transcript
from tests.envs.scoring import score_reply

pytestmark = pytest.mark.anyio

DIFFICULTIES = ("easy", "medium", "hard")

# sha256 of MotionVideo(difficulty=d).task(7).model_dump_json() and of its decoded frames:
# they change only on purpose. The video is pinned by its pixels, not its GIF bytes, which
# may vary with the Pillow version's encoder.
GOLDEN_TASK = {
    "easy": "35091bd9049ec294954c0d73e4b1d8f9f32d880b494a4239f707d0e25f147cc8",
    "medium": "33a796d6c3ded810b309c82508b830b403d093b2fdfee7a6a1785bd365c47449",
    "hard": "afa2e8715ed9bbcac08bd585677a2fbf6378c1038ac4c59f0181f26ea903d0b6",
}
GOLDEN_FRAMES = {
    "easy": "f46e8b0457efe5c60d37785b526f7055a1eb1b248a8298160b5a5ad73388d1fa",
    "medium": "f500fa09c200781fc6488f72ce634be4aa487aadb26349ec87832bb3cd88c31d",
    "hard": "9465c4dfc35a65191f0a77203f1355ded30b65cacbc4f75a170f06fb03684a99",
}


def env_for(difficulty: str = "medium", media: MediaStore | None = None) -> MotionVideo:
    return MotionVideo(difficulty=difficulty, media=media if media is not None else MediaStore())  # type: ignore[arg-type]


def spec_for(difficulty: str = "medium", seed: int = 0) -> EpisodeSpec:
    env = env_for(difficulty)
    return env.episode(env.task(seed))


def data_of(spec: EpisodeSpec) -> MotionTask:
    return MotionTask.model_validate(spec.task.data)


def first_spec(difficulty: str, kind: str, answer: str | None = None) -> EpisodeSpec:
    for seed in range(100):
        spec = spec_for(difficulty, seed)
        data = data_of(spec)
        if data.question_kind == kind and answer in (None, data.answer):
            return spec
    raise AssertionError(f"no {difficulty} {kind} task")


def tasks(difficulty: str, n: int = 40) -> list[MotionTask]:
    return [generate(seed, difficulty) for seed in range(n)]  # type: ignore[arg-type]


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_task_and_video_are_deterministic(difficulty: str) -> None:
    first, second = env_for(difficulty).task(7), env_for(difficulty).task(7)
    assert first.model_dump_json() == second.model_dump_json()
    assert first.task_id == f"motion-video/{difficulty}/7"
    assert hashlib.sha256(first.model_dump_json().encode()).hexdigest() == GOLDEN_TASK[difficulty]
    gif = render(MotionTask.model_validate(first.data).scene)
    assert gif == render(MotionTask.model_validate(second.data).scene)
    pixels = b"".join(frame.rgb for frame in decode_gif(gif))
    assert hashlib.sha256(pixels).hexdigest() == GOLDEN_FRAMES[difficulty]


def test_seeds_give_different_tasks() -> None:
    env = env_for("medium")
    assert len({env.task(seed).model_dump_json() for seed in range(20)}) == 20


def test_difficulty_changes_the_scene() -> None:
    easy, medium, hard = tasks("easy"), tasks("medium"), tasks("hard")

    def moving(t: MotionTask) -> list[MovingObject]:
        return [o for o in t.scene.objects if o.velocity != (0, 0)]

    def diagonal(t: MotionTask) -> bool:
        return any(o.velocity[0] and o.velocity[1] for o in t.scene.objects)

    assert {(len(t.scene.objects), len(moving(t))) for t in easy} == {(1, 1)}
    assert {(len(t.scene.objects), len(moving(t))) for t in medium} == {(3, 2)}
    assert {(len(t.scene.objects), len(moving(t))) for t in hard} == {(3, 3)}
    assert [{t.scene.frames for t in ts} for ts in (easy, medium, hard)] == [{12}, {16}, {20}]
    assert not any(diagonal(t) for t in easy + medium)
    assert any(diagonal(t) for t in hard)
    turning = [[o for o in t.scene.objects if o.turn_at is not None] for t in hard]
    assert all(len(turners) == 1 for turners in turning)
    assert not any(o.turn_at is not None for t in easy + medium for o in t.scene.objects)
    assert [{t.question_kind for t in ts} for ts in (easy, medium, hard)] == [
        {"direction"},
        {"direction", "farthest"},
        {"direction", "farthest", "bounce"},
    ]
    hard_directions = {t.answer for t in hard if t.question_kind == "direction"}
    assert hard_directions & {"up-left", "up-right", "down-left", "down-right"}


def travelled(obj: MovingObject, frames: int) -> float:
    path = [obj.position(f) for f in range(frames)]
    return sum(math.dist(a, b) for a, b in itertools.pairwise(path))


def test_hard_farthest_is_not_the_longest_path() -> None:
    """On hard, the object that turned back travelled the most but did not end farthest."""
    asked = [t for t in tasks("hard", 60) if t.question_kind == "farthest"]
    assert len(asked) >= 10
    for t in asked:
        longest = max(t.scene.objects, key=lambda o: travelled(o, t.scene.frames))
        assert longest.turn_at is not None
        assert longest.name != t.answer


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", range(30))
def test_the_video_shows_exactly_the_scene(difficulty: str, seed: int) -> None:
    scene = generate(seed, difficulty).scene  # type: ignore[arg-type]
    tracks = tracks_by_colour(render(scene))
    assert set(tracks) == {o.colour for o in scene.objects}
    for obj in scene.objects:
        path = tracks[obj.colour]
        assert len(path) == scene.frames
        start = path[0]
        for f, (x, y) in enumerate(path):  # the centroid moves exactly as the object
            px, py = obj.position(f)
            assert (x - start[0], y - start[1]) == pytest.approx((px - obj.x, py - obj.y))


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="difficulty must be one of easy, medium, hard"):
        MotionVideo(difficulty="extreme")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown options: fps"):
        MotionVideo(fps=10)


def test_scenes_are_validated() -> None:
    def obj(colour: str, x: int, y: int, vx: int = 0, **more: object) -> dict[str, object]:
        return {"colour": colour, "kind": "square", "size": 10, "x": x, "y": y} | {
            "velocity": (vx, 0),
            **more,
        }

    def scene(*objects: dict[str, object], frames: int = 5) -> MotionScene:
        return MotionScene.model_validate({"frames": frames, "objects": objects})

    assert scene(obj("red", 10, 10, 3), obj("blue", 60, 60)).frames == 5
    with pytest.raises(ValueError, match="distinct"):
        scene(obj("red", 10, 10), obj("red", 60, 60))
    with pytest.raises(ValueError, match="leaves the picture in frame 3"):
        scene(obj("red", SIZE - 20, 10, 3))
    with pytest.raises(ValueError, match="touch in frame 3"):
        scene(obj("red", 10, 10, 10), obj("blue", 50, 10))
    with pytest.raises(ValueError, match="go together"):
        scene(obj("red", 10, 10, 3, turn_at=2))
    turned = MovingObject.model_validate(obj("red", 10, 10, 3, turn_at=2, velocity_after=(-3, 0)))
    assert [turned.position(f)[0] for f in range(5)] == [10, 13, 16, 13, 10]
    assert turned.displacement(5) == (0, 0)


# --- episodes -------------------------------------------------------------------------------


def test_episode_spec() -> None:
    media = MediaStore()
    env = env_for("hard", media)
    spec = env.episode(env.task(3))
    data = data_of(spec)
    system, user = spec.messages
    assert system.role == "system"
    assert isinstance(user, UserMessage)
    assert user.author == "environment"
    text, video = user.content
    assert isinstance(text, TextPart)
    assert text.text == prompt(data)
    assert data.question in text.text
    assert all(o.name in text.text for o in data.scene.objects)
    assert isinstance(video, VideoPart)
    assert video.media is not None
    assert video.media.mime_type == GIF
    gif = media.get(video.media)
    assert gif == render(data.scene)
    frames = decode_gif(gif)
    assert (len(frames), frames[0].width, frames[0].height) == (20, SIZE, SIZE)
    assert len(gif) < 20_000
    assert len(spec.tools) == 0
    assert spec.limits.max_turns == 1
    assert EnvMetadata.model_validate(spec.metadata) == MotionVideo.metadata
    assert spec.state == data.scene


# --- through the runtime --------------------------------------------------------------------
# (oracle 1.0, null 0.0, the shared store and bad tasks: tests/envs/test_media_envs.py)


def watched(
    media: MediaStore, request: ModelRequest, keep: Callable[[int], Sequence[int]]
) -> str | None:
    """The solver's answer from only the frames at ``keep(number of frames)``."""
    found = first_video(request.conversation, media)
    assert found is not None
    message, gif = found
    tracks = {
        colour: [path[i] for i in keep(len(path))] for colour, path in tracks_by_colour(gif).items()
    }
    return answer_question(message.text, tracks)


async def test_watching_only_the_first_and_last_frame_misses_the_turn() -> None:
    """A viewer that compares the endpoints cannot see an object turn back mid-way."""
    media = MediaStore()

    def endpoints(request: ModelRequest) -> str:
        return watched(media, request, lambda n: (0, n - 1)) or "no idea"

    rollouts = await gymbus.run(env_for("hard", media), gymbus.FunctionModel(endpoints), n=60)
    turned = [
        r
        for r in rollouts
        if r.evidence["question_kind"] == "bounce" and r.evidence["expected"] == "yes"
    ]
    assert len(turned) >= 5
    assert all(r.reward == 0.0 and r.evidence["got"] == "no" for r in turned)
    others = [r for r in rollouts if r not in turned]
    assert all(r.reward == 1.0 for r in others)  # endpoints answer the rest


async def test_eight_sampled_frames_are_enough() -> None:
    """Servers without video input get evenly sampled frames (first and last included);
    every question stays answerable from 8 of them."""
    media = MediaStore()

    def sampled(request: ModelRequest) -> str:
        return watched(media, request, lambda n: [i * (n - 1) // 7 for i in range(8)]) or "?"

    for difficulty in DIFFICULTIES:
        env = env_for(difficulty, media)
        rollouts = await gymbus.run(env, gymbus.FunctionModel(sampled), n=30)
        assert all(r.reward == 1.0 for r in rollouts), [r.evidence for r in rollouts]


async def test_path_length_is_not_distance_from_the_start() -> None:
    spec = first_spec("hard", "farthest")
    data = data_of(spec)
    longest = max(data.scene.objects, key=lambda o: travelled(o, data.scene.frames))
    assert (await score_reply(spec, f"The {longest.name}.")).reward == 0.0
    assert (await score_reply(spec, f"The {data.answer}.")).reward == 1.0


async def test_hedged_and_near_directions_score_zero() -> None:
    spec = first_spec("hard", "direction", "up-left")
    for reply in ("up-left", "Up and to the left.", "north-west", "upper left"):
        assert (await score_reply(spec, reply)).reward == 1.0, reply
    for reply in ("up", "left", "left or up", "up-left or down-right", "down-right", "right"):
        score = await score_reply(spec, reply)
        assert score.reward == 0.0, reply
    hedged = await score_reply(spec, "up-left or up-right")
    assert hedged.scores == {"answer_correct": 0.0, "answer_parsed": 0.0}
    assert hedged.evidence["got"] is None


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_the_opposite_direction_scores_zero(difficulty: str) -> None:
    opposite = {"up": "down", "down": "up", "left": "right", "right": "left"}
    for seed in range(10):
        spec = spec_for(difficulty, seed)
        data = data_of(spec)
        if data.question_kind != "direction":
            continue
        flipped = "-".join(opposite[part] for part in data.answer.split("-"))
        assert (await score_reply(spec, flipped)).reward == 0.0
        assert (await score_reply(spec, data.answer)).reward == 1.0


async def test_yes_no_and_evidence() -> None:
    spec = first_spec("hard", "bounce", "yes")
    data = data_of(spec)
    assert (await score_reply(spec, "Yes, it turned back.")).reward == 1.0
    assert (await score_reply(spec, "No.")).reward == 0.0
    assert (await score_reply(spec, "yes or no")).reward == 0.0
    score = await score_reply(spec, "yes")
    motion = score.evidence["motion"]
    assert score.evidence["question_kind"] == "bounce"
    assert data.subject is not None
    assert motion[data.subject]["changed_direction"] is True
    assert sum(m["changed_direction"] for m in motion.values()) == 1


# --- scoring --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the red square", "red square"),
        ("Red square.", "red square"),
        ("red", "red square"),
        ("The red one moved farthest.", "red square"),
        ("the blue square", "blue square"),  # named, just not in the scene
        ("the red square and the green circle", None),
        ("red or green", None),
        ("the square", None),
        ("I can't help with that.", None),
    ],
)
def test_named_object(text: str, expected: str | None) -> None:
    assert named_object({"red": "square", "green": "circle"})(text) == expected


def test_solver_watches_the_video_not_the_task() -> None:
    spec = spec_for("easy", 1)
    media = MediaStore()
    for seed in (2, 3, 4, 5):
        task = generate(seed, "easy")
        video = VideoPart(media=media.put(render(task.scene), GIF))
        user = UserMessage(content=(TextPart(text=prompt(task)), video), author="environment")
        assert MotionVideoSolver(media).next_message(Transcript([user])).text == task.answer
    # without access to the video (another store) the solver cannot answer
    reply = MotionVideoSolver(MediaStore()).next_message(Transcript(spec.messages))
    assert reply.text == "I cannot see a video to watch."


TRACKS: dict[str, list[Point]] = {
    "red": [(10, 10), (20, 10), (30, 10)],
    "blue": [(50, 50), (45, 45), (40, 40)],
    "green": [(90, 90), (90, 70), (90, 90)],
}


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Which direction did the red square move? Answer with one of: left.", "right"),
        ("Which direction did the blue circle move?", "up-left"),
        ("Which direction did the purple circle move?", None),  # not in the video
        (
            "It shows a red square, a blue circle and a green triangle. Which object ended "
            "up farthest from where it started?",
            "red square",
        ),
        ("Did the green triangle change direction during the video?", "yes"),
        ("Did the red square change direction during the video?", "no"),
        ("What colour is the background?", None),
    ],
)
def test_answer_question(question: str, answer: str | None) -> None:
    assert answer_question(question, TRACKS) == answer


def test_every_colour_is_distinct() -> None:
    assert len(set(COLOURS.values())) == len(COLOURS)
