import hashlib
import re
from collections.abc import Callable

import pytest

import gymbus
from gymbus.envs.builtin.chart_reading import (
    BarChart,
    ChartReading,
    ChartReadingSolver,
    ChartTask,
    answer_question,
    generate,
    one_of,
    prompt,
    read_bars,
    render,
)
from gymbus.envs.builtin.images import PNG, decode_png, first_image
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

# sha256 of ChartReading(difficulty=d).task(7).model_dump_json(): changes only on purpose.
# The rendered chart is only checked for byte-identity within a run: its text is drawn
# with Pillow's bundled font, whose rasterization may change between Pillow releases.
GOLDEN_TASK = {
    "easy": "600a28f3c96c312d23b4155d9f6a2bfd31c1ad9a17aae694850036e203c9317a",
    "medium": "fb1e60491ade977c51f08b58bd070a75e1c7bb9557ba8c71a904a044d3554b4d",
    "hard": "249841c95f9b15ea753bb6224672746705f3153be108257e54ad67b345c6f768",
}


def env_for(difficulty: str = "medium", media: MediaStore | None = None) -> ChartReading:
    store = media if media is not None else MediaStore()
    return ChartReading(difficulty=difficulty, media=store)  # type: ignore[arg-type]


def spec_for(difficulty: str = "medium", seed: int = 0) -> EpisodeSpec:
    env = env_for(difficulty)
    return env.episode(env.task(seed))


def data_of(spec: EpisodeSpec) -> ChartTask:
    return ChartTask.model_validate(spec.task.data)


def chart(**changes: object) -> BarChart:
    base = {
        "title": "Units sold by store",
        "labels": ["Oslo", "Lima", "Rome"],
        "values": [10, 30, 20],
        "step": 10,
        "ticks": 4,
        "minor": False,
        "colour": "blue",
    }
    return BarChart.model_validate(base | changes)


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_task_and_image_are_deterministic(difficulty: str) -> None:
    first, second = env_for(difficulty).task(7), env_for(difficulty).task(7)
    assert first.model_dump_json() == second.model_dump_json()
    assert first.task_id == f"chart-reading/{difficulty}/7"
    assert hashlib.sha256(first.model_dump_json().encode()).hexdigest() == GOLDEN_TASK[difficulty]
    png = render(ChartTask.model_validate(first.data).chart)
    assert png == render(ChartTask.model_validate(second.data).chart)


def test_seeds_give_different_tasks() -> None:
    env = env_for("medium")
    assert len({env.task(seed).model_dump_json() for seed in range(20)}) == 20


def test_difficulty_changes_the_chart_and_the_question() -> None:
    def summary(difficulty: str) -> tuple[set[int], set[bool], set[str]]:
        tasks = [generate(seed, difficulty) for seed in range(40)]  # type: ignore[arg-type]
        return (
            {len(t.chart.labels) for t in tasks},
            {t.chart.minor for t in tasks},
            {t.question_kind for t in tasks},
        )

    assert summary("easy") == ({3, 4}, {False}, {"value", "highest"})
    assert summary("medium") == ({5, 6}, {False}, {"value", "highest", "lowest", "count-above"})
    assert summary("hard") == ({8}, {True}, {"difference", "sum"})


@pytest.mark.parametrize("seed", range(30))
def test_hard_values_are_close_and_need_the_minor_gridlines(seed: int) -> None:
    c = generate(seed, "hard").chart
    half = c.step // 2
    assert all(v % half == 0 for v in c.values)
    assert max(c.values) - min(c.values) <= 9 * half  # a band of ten half-steps
    assert any(v % c.step for v in c.values)  # some values sit on unlabelled gridlines


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", range(30))
def test_every_value_is_exactly_readable(difficulty: str, seed: int) -> None:
    c = generate(seed, difficulty).chart  # type: ignore[arg-type]
    assert len(set(c.values)) == len(c.values)
    assert all(v * c.step_px % c.step == 0 for v in c.values)  # whole pixels
    assert read_bars(render(c), c.axis_max) == list(c.values)


def test_the_chart_is_drawn_to_scale() -> None:
    raster = decode_png(render(chart(values=[10, 40, 25], ticks=4, minor=True)))
    bar = raster.index_of((70, 130, 180))
    assert bar is not None
    heights = []
    for run in raster.runs(195):  # the row above the x-axis
        if run.index == bar:
            x = run.x0
            heights.append(sum(raster.index(x, y) == bar for y in range(raster.height)))
    assert heights == [40, 160, 100]  # 40 px per gridline step of 10


def test_charts_are_validated() -> None:
    with pytest.raises(ValueError, match="1 to 8 bars"):
        chart(values=[10, 20])
    with pytest.raises(ValueError, match=re.escape("values must be in (0, 40]")):
        chart(values=[10, 50, 20])
    with pytest.raises(ValueError, match="less than or equal to 8"):
        chart(ticks=9)


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="difficulty must be one of easy, medium, hard"):
        ChartReading(difficulty="extreme")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown options: colour"):
        ChartReading(colour="red")


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
    assert "left to right: " + ", ".join(data.chart.labels) + "." in text.text
    assert f"runs from 0 to {data.chart.axis_max}," in text.text
    assert isinstance(image, ImagePart)
    assert image.media is not None
    assert image.media.mime_type == PNG
    assert media.get(image.media) == render(data.chart)
    assert len(spec.tools) == 0
    assert spec.limits.max_turns == 1
    assert EnvMetadata.model_validate(spec.metadata) == ChartReading.metadata
    assert spec.state == data.chart


# --- through the runtime --------------------------------------------------------------------
# (oracle 1.0, null 0.0, the shared store and bad tasks: tests/envs/test_media_envs.py)


Misreading = Callable[[dict[str, int], int], dict[str, int]]


def misreader(media: MediaStore, misread: Misreading) -> tuple[gymbus.FunctionModel, list[str]]:
    """A policy that perceives the chart like the reference solver, then distorts what it
    read with ``misread(values, step)``; and the list of answers the distortion changed."""
    changed: list[str] = []

    def policy(request: ModelRequest) -> str:
        found = first_image(request.conversation, media)
        assert found is not None
        message, png = found
        names = message.text.split("left to right: ")[1].split(".")[0].split(", ")
        axis_max, step = re.findall(r"from 0 to (\d+), .* every (\d+)", message.text)[0]
        values = dict(zip(names, read_bars(png, int(axis_max)), strict=True))
        answer = answer_question(message.text, misread(values, int(step)))
        assert answer is not None
        if answer != answer_question(message.text, values):
            changed.append(answer)
        return answer

    return gymbus.FunctionModel(policy), changed


def to_labelled_gridlines(values: dict[str, int], step: int) -> dict[str, int]:
    """Ignores the unlabelled gridlines: rounds each value to a labelled one (half up)."""
    return {name: (v + step // 2) // step * step for name, v in values.items()}


def shifted_by_one_bar(values: dict[str, int], step: int) -> dict[str, int]:
    """Pairs each name with the value of the bar to its right (the last with the first)."""
    names, read = list(values), list(values.values())
    return dict(zip(names, read[1:] + read[:1], strict=True))


@pytest.mark.parametrize(
    ("misread", "difficulty", "at_least"),
    [
        (to_labelled_gridlines, "hard", 15),
        (shifted_by_one_bar, "easy", 25),
        (shifted_by_one_bar, "medium", 15),
        (shifted_by_one_bar, "hard", 25),
    ],
)
async def test_misreading_the_chart_scores_zero(
    misread: Misreading, difficulty: str, at_least: int
) -> None:
    media = MediaStore()
    model, changed = misreader(media, misread)
    rollouts = await gymbus.run(env_for(difficulty, media), model, n=30)
    assert all(r.status == "scored" for r in rollouts)
    wrong = [r for r in rollouts if r.reward == 0.0]
    assert len(wrong) == len(changed) >= at_least, len(changed)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_near_misses_score_zero(difficulty: str) -> None:
    for seed in range(10):
        spec = spec_for(difficulty, seed)
        data = data_of(spec)
        if data.question_kind in ("highest", "lowest"):
            others = [label for label in data.chart.labels if label != data.answer]
            for other in others:
                assert (await score_reply(spec, other)).reward == 0.0
            hedge = await score_reply(spec, f"{data.answer} or {others[0]}")
            assert hedge.scores == {"answer_correct": 0.0, "answer_parsed": 0.0}
        else:
            half = data.chart.step // 2 if data.chart.minor else 1
            for near in (int(data.answer) - half, int(data.answer) + half):
                score = await score_reply(spec, str(near))
                assert score.scores == {"answer_correct": 0.0, "answer_parsed": 1.0}
        assert (await score_reply(spec, f"It is {data.answer}.")).reward == 1.0


# --- scoring --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lima", "Lima"),
        ("lima.", "Lima"),
        ("The highest is **Rome** (40).", "Rome"),
        ("Lima or Rome", None),
        ("Limassol", None),
        ("I can't help with that.", None),
    ],
)
def test_one_of(text: str, expected: str | None) -> None:
    assert one_of(("Oslo", "Lima", "Rome"))(text) == expected


async def test_score_evidence() -> None:
    spec = spec_for("hard", 4)
    data = data_of(spec)
    score = await score_reply(spec, "0")
    assert score.reward == 0.0
    assert score.evidence["expected"] == data.answer
    assert score.evidence["got"] == "0"
    assert score.evidence["question_kind"] == data.question_kind
    assert list(score.evidence["asked"]) == list(data.asked)
    assert score.evidence["values"] == dict(zip(data.chart.labels, data.chart.values, strict=True))


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is the value of Lima? Answer with just the number.", "30"),
        ("Which store has the highest value? Answer with just the store's name.", "Lima"),
        ("Which store has the lowest value?", "Oslo"),
        ("How many bars are higher than 15?", "2"),
        ("How much higher is Lima than Oslo?", "20"),
        ("What is the combined value of Rome and Oslo?", "30"),
        ("What colour are the bars?", None),
    ],
)
def test_answer_question(question: str, answer: str | None) -> None:
    assert answer_question(question, {"Oslo": 10, "Lima": 30, "Rome": 20}) == answer


def test_solver_reads_the_image_not_the_task() -> None:
    spec = spec_for("easy", 0)
    media = MediaStore()
    question = prompt(
        ChartTask(
            chart=chart(),
            question="What is the value of Lima? Answer with just the number.",
            question_kind="value",
            asked=("Lima",),
            answer="30",
        )
    )
    for lima in (10, 20, 40):
        png = render(chart(values=[10, lima, 20]))
        image = ImagePart(media=media.put(png, PNG))
        user = UserMessage(content=(TextPart(text=question), image), author="environment")
        assert ChartReadingSolver(media).next_message(Transcript([user])).text == str(lima)
    # without access to the image (another store) the solver cannot answer
    reply = ChartReadingSolver(MediaStore()).next_message(Transcript(spec.messages))
    assert reply.text == "I cannot see a chart to read."
    # nor when the prompt's bar list does not match the bars it sees
    wrong = UserMessage(content=(TextPart(text=question.replace("Rome", "Rome, Kyiv")), image))
    assert (
        "cannot read the chart" in ChartReadingSolver(media).next_message(Transcript([wrong])).text
    )
