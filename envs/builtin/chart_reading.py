"""``chart-reading``: read values off a bar chart image (multi-modal perception).

The policy sees a PNG bar chart (bars labelled under the x-axis, a labelled y-axis with
gridlines) and one question about it. The prompt names the bars left to right and states
the axis range and gridline step, but no values: those are only in the pixels. Values are
exact multiples of the gridline step (hard: of half a step, with an unlabelled gridline
halfway), drawn at a whole number of pixels per unit, so every value is exactly readable.

Difficulty: easy has 3-4 bars and asks for one bar's value or the tallest bar; medium has
5-6 bars and asks for the tallest or shortest bar, one value, or how many bars are higher
than a threshold; hard has 8 bars with close values on half-step gridlines and asks for
the difference or the sum of two bars (arithmetic over two exact readings).

No core capability is claimed: the task is perception (the ``multi-modal`` structure), and
the answer is a bare number or name, so no schema is involved. Verifier: exact match of the
last integer of the final answer, or, for "which bar" questions, the one bar name the final
answer mentions (naming several is hedging and scores 0). Null check: "I can't help with
that." holds no integer and no bar name, so it scores 0.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from gymbus.envs.base import Difficulty
from gymbus.envs.builtin.images import RGB, Canvas, decode_png, first_image, image_question
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
    "BarChart",
    "ChartReading",
    "ChartReadingSolver",
    "ChartTask",
    "answer_question",
    "generate",
    "one_of",
    "prompt",
    "read_bars",
    "render",
]

QuestionKind = Literal["value", "highest", "lowest", "count-above", "difference", "sum"]

# The chart's style, which the solver knows as a reader knows what gridlines look like.
BACKGROUND: RGB = (255, 255, 255)
TEXT: RGB = (20, 20, 20)
GRID: RGB = (190, 190, 190)
MINOR_GRID: RGB = (228, 228, 228)
AXIS: RGB = (90, 90, 90)
BarColour = Literal["blue", "orange", "green", "red", "purple"]
BAR_COLOURS: dict[BarColour, RGB] = {
    "blue": (70, 130, 180), "orange": (221, 132, 82), "green": (85, 168, 104),
    "red": (196, 78, 82), "purple": (129, 114, 179),
}  # fmt: skip
_STYLE = (BACKGROUND, TEXT, GRID, MINOR_GRID, AXIS)  # inks 0-4; the bar is ink 5
WIDTH, HEIGHT = 320, 240
_LEFT, _RIGHT, _BASELINE, _PLOT_HEIGHT = 44, 312, 196, 160  # plot area (px)

STORES = (  # four letters: eight labels fit side by side under the bars
    "Oslo", "Lima", "Rome", "Kyiv", "Doha", "Bern", "Riga", "Pune", "Baku", "Nice",
    "Kobe", "Lyon", "Graz", "Bonn", "Cork", "Kiel", "Oulu", "Pisa", "Faro", "Agra",
)  # fmt: skip


class BarChart(Frozen):
    title: str
    labels: tuple[str, ...]
    values: tuple[int, ...]
    step: int = Field(ge=1)  # a labelled gridline every ``step``
    ticks: int = Field(ge=1, le=8)  # labelled gridlines above 0: the axis runs to ticks * step
    minor: bool  # an unlabelled gridline halfway between labelled ones
    colour: BarColour

    @model_validator(mode="after")
    def _drawable(self) -> BarChart:
        if not 1 <= len(self.labels) == len(self.values) <= 8:
            raise ValueError("a chart has 1 to 8 bars, each with a label and a value")
        if not all(0 < v <= self.axis_max for v in self.values):
            raise ValueError(f"values must be in (0, {self.axis_max}]")
        return self

    @property
    def axis_max(self) -> int:
        return self.ticks * self.step

    @property
    def step_px(self) -> int:
        """Pixels per gridline step: even, so half a step is a whole number of pixels."""
        return _PLOT_HEIGHT // self.ticks // 2 * 2

    def value(self, label: str) -> int:
        return self.values[self.labels.index(label)]


class ChartTask(Frozen):
    chart: BarChart
    question: str
    question_kind: QuestionKind
    asked: tuple[str, ...]  # the bars the question is about
    answer: str


@dataclass(frozen=True, slots=True)
class _Level:
    bars: tuple[int, ...]
    ticks: tuple[int, ...]  # labelled gridlines above 0
    steps: tuple[int, ...]
    half_steps: bool  # values on half-steps, close together, with minor gridlines
    kinds: tuple[QuestionKind, ...]


_LEVELS: dict[Difficulty, _Level] = {
    "easy": _Level((3, 4), (4, 5), (5, 10, 20, 25), False, ("value", "highest")),
    "medium": _Level(
        (5, 6), (7, 8), (5, 10, 20, 25, 50), False, ("highest", "lowest", "value", "count-above")
    ),
    "hard": _Level((8,), (5, 6, 7, 8), (10, 20, 50), True, ("difference", "sum")),
}


def _values(rng: random.Random, n: int, ticks: int, step: int, half_steps: bool) -> list[int]:
    """``n`` distinct values; with ``half_steps``, packed into a band of 10 half-steps."""
    if not half_steps:
        return [k * step for k in rng.sample(range(1, ticks + 1), n)]
    low = rng.randint(1, 2 * ticks - 9)
    return [u * step // 2 for u in rng.sample(range(low, low + 10), n)]


def _question(
    rng: random.Random, chart: BarChart, kind: QuestionKind
) -> tuple[QuestionKind, str, tuple[str, ...], str]:
    """(kind, text, bars asked about, answer); count-above may fall back to value."""
    number, name = " Answer with just the number.", " Answer with just the store's name."
    labels, values = chart.labels, chart.values
    if kind == "count-above":
        free = [k * chart.step for k in range(1, chart.ticks) if k * chart.step not in values]
        usable = [t for t in free if 0 < sum(v > t for v in values) < len(values)]
        if usable:
            threshold = rng.choice(usable)
            text = f"How many bars are higher than {threshold}?{number}"
            return kind, text, (), str(sum(v > threshold for v in values))
        kind = "value"
    if kind in ("highest", "lowest"):
        label = labels[values.index(max(values) if kind == "highest" else min(values))]
        return kind, f"Which store has the {kind} value?{name}", (label,), label
    if kind == "value":
        label = rng.choice(labels)
        return kind, f"What is the value of {label}?{number}", (label,), str(chart.value(label))
    a, b = sorted(rng.sample(labels, 2), key=chart.value, reverse=True)
    if kind == "difference":
        text = f"How much higher is {a} than {b}?{number}"
        return kind, text, (a, b), str(chart.value(a) - chart.value(b))
    text = f"What is the combined value of {a} and {b}?{number}"
    return kind, text, (a, b), str(chart.value(a) + chart.value(b))


def generate(seed: int, difficulty: Difficulty) -> ChartTask:
    """The task for ``seed`` at ``difficulty`` (deterministic)."""
    rng = random.Random(seed)
    level = _LEVELS[difficulty]
    n, ticks, step = rng.choice(level.bars), rng.choice(level.ticks), rng.choice(level.steps)
    chart = BarChart(
        title="Units sold by store",
        labels=tuple(rng.sample(STORES, n)),
        values=tuple(_values(rng, n, ticks, step, level.half_steps)),
        step=step,
        ticks=ticks,
        minor=level.half_steps,
        colour=rng.choice(list(BAR_COLOURS)),
    )
    kind, text, asked, answer = _question(rng, chart, rng.choice(level.kinds))
    return ChartTask(chart=chart, question=text, question_kind=kind, asked=asked, answer=answer)


def _slots(n: int) -> list[tuple[int, int]]:
    """Each bar's ``(x0, x1)`` pixel columns (``x0 <= x < x1``), left to right."""
    slot = (_RIGHT - _LEFT) // n
    width = slot * 3 // 5
    return [(x0, x0 + width) for x0 in (_LEFT + i * slot + (slot - width) // 2 for i in range(n))]


def render(chart: BarChart) -> bytes:
    """The chart as a PNG (deterministic: same chart, same bytes)."""
    canvas = Canvas(WIDTH, HEIGHT, [*_STYLE, BAR_COLOURS[chart.colour]])
    text, grid, minor, axis, bar = range(1, 6)  # inks, in _STYLE order
    canvas.text((WIDTH // 2, 8), chart.title, text, anchor="mt")
    half = chart.step_px // 2
    for k in range(1, 2 * chart.ticks + 1):
        y = _BASELINE - k * half
        if k % 2 == 0:
            canvas.draw.line((_LEFT, y, _RIGHT, y), fill=grid)
            canvas.text((_LEFT - 5, y), str(k // 2 * chart.step), text, anchor="rm")
        elif chart.minor:
            canvas.draw.line((_LEFT, y, _RIGHT, y), fill=minor)
    canvas.text((_LEFT - 5, _BASELINE), "0", text, anchor="rm")
    slots = _slots(len(chart.labels))
    for (x0, x1), label, value in zip(slots, chart.labels, chart.values, strict=True):
        height = value * chart.step_px // chart.step
        canvas.draw.rectangle((x0, _BASELINE - height, x1 - 1, _BASELINE - 1), fill=bar)
        canvas.text(((x0 + x1) // 2, _BASELINE + 6), label, text, anchor="mt")
    canvas.draw.line((_LEFT, _BASELINE, _RIGHT, _BASELINE), fill=axis)
    canvas.draw.line((_LEFT, _BASELINE, _LEFT, _BASELINE - chart.ticks * chart.step_px), fill=axis)
    return canvas.png()


def prompt(task: ChartTask) -> str:
    chart = task.chart
    minor = " and an unlabelled one halfway between" if chart.minor else ""
    return (
        f"The bar chart shows {chart.title.lower()}. Its bars are, left to right: "
        f"{', '.join(chart.labels)}. The y-axis runs from 0 to {chart.axis_max}, with a "
        f"labelled gridline every {chart.step}{minor}. {task.question}"
    )


def one_of(names: tuple[str, ...]) -> Extractor:
    """An extractor giving the one name of ``names`` the text mentions (as a word, any
    case), or ``None`` when it mentions none or several (hedging is not an answer)."""
    patterns = [(n, re.compile(rf"(?<!\w){re.escape(n)}(?!\w)", re.IGNORECASE)) for n in names]

    def extract(text: str) -> str | None:
        said = [name for name, pattern in patterns if pattern.search(text)]
        return said[0] if len(said) == 1 else None

    return extract


def _evidence(extract: Extractor, task: ChartTask) -> SubScorer:
    """Sub-score ``answer_parsed`` (an answer could be read at all) and the true values."""
    values = dict(zip(task.chart.labels, task.chart.values, strict=True))

    def sub_score(episode: CompletedEpisode) -> SubScore:
        answer = final_answer(episode.transcript)
        parsed = answer is not None and extract(answer.text) is not None
        return SubScore(
            scores={"answer_parsed": 1.0 if parsed else 0.0},
            evidence={"question_kind": task.question_kind, "asked": task.asked, "values": values},
        )

    return sub_score


class ChartReading(MediaEnvironment):
    name = "chart-reading"
    description = (
        "Read exact values off a seeded bar chart image (labelled y-axis with gridlines) and "
        "answer one question: a value, the tallest/shortest bar, how many bars pass a "
        "threshold, or the difference/sum of two bars. Reward: the exact number or name."
    )
    metadata = EnvMetadata(
        rollout_structures=("multi-modal",),
        core_capabilities=(),
        knowledge_domain="data-visualization",
        task_type="chart-question-answering",
        verification_method="exact-match",
    )

    def task(self, seed: int) -> Task:
        data = generate(seed, self.difficulty)
        return self.make_task(seed, data)

    def episode(self, task: Task) -> EpisodeSpec:
        data = self.task_data(task, ChartTask)
        names = data.question_kind in ("highest", "lowest")
        extract = one_of(data.chart.labels) if names else last_integer
        return EpisodeSpec(
            task=task,
            messages=image_question(self.media, prompt(data), render(data.chart)),
            verifier=ExactMatchVerifier(
                data.answer, extract=extract, sub_scorers=(_evidence(extract, data),)
            ),
            solver=ChartReadingSolver(self.media),
            limits=Limits(max_turns=1),
            metadata=self.metadata.model_dump(mode="json"),
            state=data.chart,
        )


def read_bars(png: bytes, axis_max: int) -> list[int]:
    """The bars' values, left to right, measured off the image: the x-axis is the row with
    the most axis-coloured pixels, the top gridline is the highest grid-coloured row and
    stands for ``axis_max``; a bar is a run of a non-style colour just above the x-axis,
    and its value is its height in pixels at that scale."""
    raster = decode_png(png)
    axis, grid = raster.index_of(AXIS), raster.index_of(GRID)
    if axis is None or grid is None:
        raise ValueError("no axis or gridlines in the image")
    baseline = max(range(raster.height), key=lambda y: raster.row(y).count(axis))
    top = raster.pixels.find(bytes((grid,))) // raster.width
    span = baseline - top
    if span <= 0:
        raise ValueError("the top gridline is not above the x-axis")
    style = {raster.index_of(colour) for colour in _STYLE}
    values = []
    for run in raster.runs(baseline - 1):
        if run.index in style:
            continue
        x, height = (run.x0 + run.x1) // 2, 0
        while height < baseline and raster.index(x, baseline - 1 - height) == run.index:
            height += 1
        values.append(round(height * axis_max / span))
    return values


_LABELS = re.compile(r"left to right: ([^.]+)\.")
_AXIS_MAX = re.compile(r"runs from 0 to ([0-9]+)")
_ASKS: tuple[tuple[QuestionKind, re.Pattern[str]], ...] = (
    ("value", re.compile(r"What is the value of (\w+)\?")),
    ("highest", re.compile(r"Which store has the (highest) value\?")),
    ("lowest", re.compile(r"Which store has the (lowest) value\?")),
    ("count-above", re.compile(r"How many bars are higher than ([0-9]+)\?")),
    ("difference", re.compile(r"How much higher is (\w+) than (\w+)\?")),
    ("sum", re.compile(r"What is the combined value of (\w+) and (\w+)\?")),
)


class ChartReadingSolver:
    """The reference solver: takes the bar order and axis range from the prompt, reads the
    image's bytes from the media store through the message's ``MediaRef`` (as a model would
    perceive the image), measures the bars and answers. Never reads the task; a pure
    function of the conversation."""

    def __init__(self, media: MediaStore) -> None:
        self._media = media

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        found = first_image(conversation, self._media)
        if found is None:
            return AssistantMessage(content="I cannot see a chart to read.")
        message, png = found
        labels, axis_max = _LABELS.search(message.text), _AXIS_MAX.search(message.text)
        if labels is None or axis_max is None:
            return AssistantMessage(content="The question does not say how to read the chart.")
        names = labels.group(1).split(", ")
        try:
            values = dict(zip(names, read_bars(png, int(axis_max.group(1))), strict=True))
        except (ValueError, OSError) as exc:  # not a chart, or not as many bars as names
            return AssistantMessage(content=f"I cannot read the chart: {exc}")
        answer = answer_question(message.text, values)
        return AssistantMessage(content=answer or "I do not understand the question.")


def answer_question(question: str, values: dict[str, int]) -> str | None:
    """The answer to this environment's ``question`` given each bar's value, or ``None``
    for a question it does not ask."""
    for kind, pattern in _ASKS:
        asked = pattern.search(question)
        if asked is not None:
            return _answer(kind, asked.groups(), values)
    return None


def _answer(kind: QuestionKind, args: tuple[str, ...], values: dict[str, int]) -> str:
    if kind == "value":
        return str(values[args[0]])
    if kind == "highest":
        return max(values, key=values.__getitem__)
    if kind == "lowest":
        return min(values, key=values.__getitem__)
    if kind == "count-above":
        return str(sum(v > int(args[0]) for v in values.values()))
    if kind == "difference":
        return str(values[args[0]] - values[args[1]])
    return str(values[args[0]] + values[args[1]])
