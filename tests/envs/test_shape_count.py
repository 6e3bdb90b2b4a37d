import hashlib
import io
from collections import Counter

import pytest
from PIL import Image

import gymbus
from gymbus.envs.builtin.images import PNG, decode_png, first_image
from gymbus.envs.builtin.shape_count import (
    COLOURS,
    ShapeCount,
    ShapeCountSolver,
    ShapeScene,
    ShapeTask,
    answer_question,
    count_shapes,
    generate,
    prompt,
    render,
    yes_or_no,
)
from gymbus.envs.metadata import EnvMetadata
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import ImagePart, TextPart, UserMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.transcript import Transcript
from tests.envs.scoring import score_reply

pytestmark = pytest.mark.anyio

DIFFICULTIES = ("easy", "medium", "hard")

# sha256 of ShapeCount(difficulty=d).task(7).model_dump_json() and of its rendered PNG:
# they change only on purpose. The image is pinned by its decoded pixels, not its PNG
# bytes, which vary with the zlib Pillow ships.
GOLDEN_TASK = {
    "easy": "7ff025489690282dc913d1a116aab5c320466a0eb8936a56e9e0fe66ee594028",
    "medium": "14fd6bb6297dbcd168cd22542e3ce4f278b58aef337732538f1568fc1bf8e83d",
    "hard": "da025ceeaadb3d43a2b95fa246bedf852bd16cea1ec49e0dab1ed9c07ce52804",
}
GOLDEN_PIXELS = {
    "easy": "8af094395b68aa77d0e64d8c843c7c3246c1e870bf33c342e00c7cd386d2d8bd",
    "medium": "f8fafbe01f89a329989d85a3ef69d0b802f629d0e5901b403e335c8fe842172e",
    "hard": "b576e1ecc4f8414c534597d1d012156a80d3c562851b5fb474eae692f43dbe9a",
}


def env_for(difficulty: str = "medium", media: MediaStore | None = None) -> ShapeCount:
    return ShapeCount(difficulty=difficulty, media=media if media is not None else MediaStore())  # type: ignore[arg-type]


def spec_for(difficulty: str = "medium", seed: int = 0) -> EpisodeSpec:
    env = env_for(difficulty)
    return env.episode(env.task(seed))


def data_of(spec: EpisodeSpec) -> ShapeTask:
    return ShapeTask.model_validate(spec.task.data)


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_task_and_image_are_deterministic(difficulty: str) -> None:
    first, second = env_for(difficulty).task(7), env_for(difficulty).task(7)
    assert first.model_dump_json() == second.model_dump_json()
    assert first.task_id == f"shape-count/{difficulty}/7"
    assert hashlib.sha256(first.model_dump_json().encode()).hexdigest() == GOLDEN_TASK[difficulty]
    png = render(ShapeTask.model_validate(first.data).scene)
    assert png == render(ShapeTask.model_validate(second.data).scene)
    pixels = Image.open(io.BytesIO(png)).convert("RGB").tobytes()
    assert hashlib.sha256(pixels).hexdigest() == GOLDEN_PIXELS[difficulty]


def test_seeds_give_different_tasks() -> None:
    env = env_for("medium")
    assert len({env.task(seed).model_dump_json() for seed in range(20)}) == 20


def test_difficulty_changes_the_scene() -> None:
    def summary(difficulty: str) -> tuple[set[int], set[int], set[int], set[str]]:
        tasks = [generate(seed, difficulty) for seed in range(40)]  # type: ignore[arg-type]
        return (
            {len(t.scene.shapes) for t in tasks},
            {len(t.scene.colours) for t in tasks},
            {s.size for t in tasks for s in t.scene.shapes},
            {t.question_kind for t in tasks},
        )

    easy, medium, hard = summary("easy"), summary("medium"), summary("hard")
    assert max(easy[0]) < min(medium[0])
    assert max(medium[0]) < min(hard[0])
    assert (easy[1], medium[1], hard[1]) == ({2}, {3}, {5})
    assert min(easy[2]) > max(hard[2])  # hard shapes are small
    assert easy[3] == {"count", "total"}
    assert medium[3] == {"count", "count-colour", "count-kind", "compare"}
    assert hard[3] == {"count", "count-colour", "compare"}


@pytest.mark.parametrize("seed", range(30))
def test_hard_questions_are_about_a_near_colour_pair(seed: int) -> None:
    task = generate(seed, "hard")
    near = [{"red", "orange"}, {"green", "teal"}, {"blue", "purple"}]
    assert any(pair <= set(task.scene.colours) for pair in near)
    named = {c for c in COLOURS if c in task.question}
    assert named
    assert any(named <= pair and pair <= set(task.scene.colours) for pair in near)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", range(30))
def test_the_image_shows_exactly_the_scene(difficulty: str, seed: int) -> None:
    scene = generate(seed, difficulty).scene  # type: ignore[arg-type]
    assert count_shapes(render(scene)) == Counter((s.colour, s.kind) for s in scene.shapes)


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="difficulty must be one of easy, medium, hard"):
        ShapeCount(difficulty="extreme")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown options: colour"):
        ShapeCount(colour="red")


def test_scenes_are_validated() -> None:
    with pytest.raises(ValueError, match="colours must be distinct"):
        ShapeScene(colours=("red", "red"), shapes=())
    shape = {"kind": "circle", "colour": "blue", "x": 0, "y": 0, "size": 10}
    with pytest.raises(ValueError, match="one of the scene's colours"):
        ShapeScene.model_validate({"colours": ["red"], "shapes": [shape]})


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
    text, image = user.content
    assert isinstance(text, TextPart)
    assert text.text == prompt(data)
    assert data.question in text.text
    assert isinstance(image, ImagePart)
    assert image.media is not None
    assert image.media.mime_type == PNG
    assert media.get(image.media) == render(data.scene)
    assert decode_png(media.get(image.media)).width == 320
    assert len(spec.tools) == 0
    assert spec.limits.max_turns == 1
    assert EnvMetadata.model_validate(spec.metadata) == ShapeCount.metadata
    assert spec.state == data.scene


# --- through the runtime --------------------------------------------------------------------
# (oracle 1.0, null 0.0, the shared store and bad tasks: tests/envs/test_media_envs.py)


def perceived(media: MediaStore, request: ModelRequest) -> tuple[str, Counter[tuple[str, str]]]:
    found = first_image(request.conversation, media)
    assert found is not None
    message, png = found
    return message.text, count_shapes(png)


def _scene_png(counts: Counter[tuple[str, str]]) -> bytes:
    """A picture holding exactly ``counts`` (shapes in a grid)."""
    cells = [(colour, kind) for (colour, kind), n in counts.items() for _ in range(n)]
    colours = tuple(dict.fromkeys(c for c, _ in cells))
    shapes = [
        {"kind": k, "colour": c, "x": 4 + (i % 12) * 26, "y": 4 + (i // 12) * 26, "size": 20}
        for i, (c, k) in enumerate(cells)
    ]
    return render(ShapeScene.model_validate({"colours": colours, "shapes": shapes}))


async def test_confusing_near_colours_scores_zero() -> None:
    """A reader that sees orange as red (teal as green, purple as blue) fails hard tasks."""
    media = MediaStore()
    merge = {"orange": "red", "teal": "green", "purple": "blue"}
    changed: list[str] = []

    def colour_blind(request: ModelRequest) -> str:
        question, counts = perceived(media, request)
        merged: Counter[tuple[str, str]] = Counter()
        for (colour, kind), n in counts.items():
            merged[(merge.get(colour, colour), kind)] += n
        blurred = answer_question(question, merged)
        assert blurred is not None
        if blurred != answer_question(question, counts):
            changed.append(blurred)
        return blurred

    env = env_for("hard", media)
    rollouts = await gymbus.run(env, gymbus.FunctionModel(colour_blind), n=30)
    wrong = [r for r in rollouts if r.reward == 0.0]
    assert len(wrong) == len(changed) >= 15  # the near pair decides most hard questions
    assert all(r.status == "scored" and r.reward in (0.0, 1.0) for r in rollouts)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_off_by_one_scores_zero(difficulty: str) -> None:
    for seed in range(10):
        spec = spec_for(difficulty, seed)
        data = data_of(spec)
        if data.question_kind == "compare":
            flipped = {"yes": "no", "no": "yes"}[data.answer]
            assert (await score_reply(spec, flipped)).reward == 0.0
        else:
            for near in (int(data.answer) - 1, int(data.answer) + 1):
                score = await score_reply(spec, str(near))
                assert score.reward == 0.0
                assert score.scores == {"answer_correct": 0.0, "answer_parsed": 1.0}
        assert (await score_reply(spec, data.answer)).reward == 1.0


# --- scoring --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),
        ("No.", "no"),
        ("YES, there are more.", "yes"),
        ("yes or no?", None),
        ("I can't help with that.", None),
        ("nope", None),
        ("eyes", None),
    ],
)
def test_yes_or_no(text: str, expected: str | None) -> None:
    assert yes_or_no(text) == expected


async def test_score_evidence() -> None:
    spec = spec_for("medium", 4)
    data = data_of(spec)
    score = await score_reply(spec, f"The answer is {data.answer}.")
    assert score.reward == 1.0
    assert score.evidence["expected"] == data.answer
    assert score.evidence["question_kind"] == data.question_kind
    counts = score.evidence["counts"]
    assert sum(counts.values()) == len(data.scene.shapes)


def test_solver_reads_the_image_not_the_task() -> None:
    spec = spec_for("easy", 1)
    media = MediaStore()
    question = "How many shapes are in the image in total? Answer with just the number."
    for n in (1, 5, 9):
        image = ImagePart(media=media.put(_scene_png(Counter({("red", "circle"): n})), PNG))
        user = UserMessage(content=(TextPart(text=question), image), author="environment")
        assert ShapeCountSolver(media).next_message(Transcript([user])).text == str(n)
    # without access to the image (another store) the solver cannot answer
    reply = ShapeCountSolver(MediaStore()).next_message(Transcript(spec.messages))
    assert reply.text == "I cannot see an image to count shapes in."


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("How many red circles are in the image? Answer with just the number.", "3"),
        ("How many red shapes (of any kind) are in the image?", "4"),
        ("How many squares (of any colour) are in the image?", "3"),
        ("Are there more red circles than blue squares in the image? Answer yes or no.", "yes"),
        ("Are there more blue squares than red circles in the image? Answer yes or no.", "no"),
        ("How many shapes are in the image in total?", "6"),
        ("What colour is the sky?", None),
    ],
)
def test_answer_question(question: str, answer: str | None) -> None:
    counts = Counter({("red", "circle"): 3, ("red", "square"): 1, ("blue", "square"): 2})
    assert answer_question(question, counts) == answer
