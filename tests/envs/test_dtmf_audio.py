import hashlib
import itertools

import pytest

import gymbus
from gymbus.envs.builtin.audio import WAV, first_audio, read_wav
from gymbus.envs.builtin.dtmf_audio import (
    DtmfAudio,
    DtmfAudioSolver,
    DtmfClip,
    DtmfTask,
    Press,
    answer_question,
    generate,
    heard_keys,
    keyed_answer,
    prompt,
    render,
)
from gymbus.envs.metadata import EnvMetadata
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import AudioPart, TextPart, UserMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.transcript import Transcript
from tests.envs.scoring import score_reply

pytestmark = pytest.mark.anyio

DIFFICULTIES = ("easy", "medium", "hard")

# sha256 of DtmfAudio(difficulty=d).task(7).model_dump_json() and of its WAV bytes: they
# change only on purpose (`wave` writes a fixed header; samples are rounded floats).
GOLDEN_TASK = {
    "easy": "7fc150cbe6f5e900b0e05bc722628ae0465a8d9147459826d8ccceb9df464550",
    "medium": "e816a3925b6f4c9172ef7951d815ac7a328512a2036ccaf08f80c8d3f911c46b",
    "hard": "b59c388e05a40a315dd18ad4f3400c0790abd55976326b0ce2ea13925a65d05b",
}
GOLDEN_WAV = {
    "easy": "8a86abf4bfe66205e46cfd65fa13f35d557e171b7b8d51b84c078f1a060b8db9",
    "medium": "4fb1d2bc70ba03a72cada5958a7c7021af43c210f70712a02e6052a43fe6d5af",
    "hard": "aa2520c4aa27d43e192843c570db62ceec30ea7163529a5cb4795589a45e0fd8",
}


def env_for(difficulty: str = "medium", media: MediaStore | None = None) -> DtmfAudio:
    return DtmfAudio(difficulty=difficulty, media=media if media is not None else MediaStore())  # type: ignore[arg-type]


def spec_for(difficulty: str = "medium", seed: int = 0) -> EpisodeSpec:
    env = env_for(difficulty)
    return env.episode(env.task(seed))


def data_of(spec: EpisodeSpec) -> DtmfTask:
    return DtmfTask.model_validate(spec.task.data)


def tasks(difficulty: str, n: int = 40) -> list[DtmfTask]:
    return [generate(seed, difficulty) for seed in range(n)]  # type: ignore[arg-type]


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_task_and_audio_are_deterministic(difficulty: str) -> None:
    first, second = env_for(difficulty).task(7), env_for(difficulty).task(7)
    assert first.model_dump_json() == second.model_dump_json()
    assert first.task_id == f"dtmf-audio/{difficulty}/7"
    assert hashlib.sha256(first.model_dump_json().encode()).hexdigest() == GOLDEN_TASK[difficulty]
    wav = render(DtmfTask.model_validate(first.data).clip)
    assert wav == render(DtmfTask.model_validate(second.data).clip)
    assert hashlib.sha256(wav).hexdigest() == GOLDEN_WAV[difficulty]


def test_seeds_give_different_tasks() -> None:
    env = env_for("medium")
    assert len({env.task(seed).model_dump_json() for seed in range(20)}) == 20


def has_double(keys: str) -> bool:
    return any(a == b for a, b in itertools.pairwise(keys))


def test_difficulty_changes_the_clip() -> None:
    easy, medium, hard = tasks("easy"), tasks("medium"), tasks("hard")
    assert {len(t.clip.keys) for t in easy} == {4}
    assert {len(t.clip.keys) for t in medium} == {8}
    assert {len(t.clip.keys) for t in hard} == {12}
    assert all(t.clip.keys.isdigit() for t in easy + medium)
    assert all(t.clip.keys[0] == "*" and t.clip.keys.count("#") == 1 for t in hard)
    assert all(has_double(t.clip.keys) for t in medium + hard)  # a key pressed twice

    def tone_ms(ts: list[DtmfTask]) -> list[int]:
        return [p.tone_ms for t in ts for p in t.clip.presses]

    assert min(tone_ms(easy)) > max(tone_ms(medium))
    assert min(tone_ms(medium)) > max(tone_ms(hard))
    assert max(tone_ms(hard)) <= 70
    assert [{t.clip.noise for t in ts} for ts in (easy, medium, hard)] == [{0}, {20}, {40}]
    assert {p.low_level - p.high_level for t in easy + medium for p in t.clip.presses} == {0}
    assert any(p.high_level < p.low_level for t in hard for p in t.clip.presses)  # twist
    assert [{t.question_kind for t in ts} for ts in (easy, medium, hard)] == [
        {"number"},
        {"number", "sum"},
        {"extension", "sum", "sequence"},
    ]


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", range(30))
def test_the_audio_holds_exactly_the_keys(difficulty: str, seed: int) -> None:
    task = generate(seed, difficulty)  # type: ignore[arg-type]
    assert heard_keys(render(task.clip)) == task.clip.keys


def test_answers_follow_the_keys() -> None:
    by_kind = {t.question_kind: t for t in tasks("hard") + tasks("medium")}
    sequence, extension = by_kind["sequence"], by_kind["extension"]
    assert sequence.answer == sequence.clip.keys
    assert extension.answer == extension.clip.keys.split("#")[1]
    total = by_kind["sum"]
    assert total.answer == str(sum(int(k) for k in total.clip.keys if k.isdigit()))


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="difficulty must be one of easy, medium, hard"):
        DtmfAudio(difficulty="extreme")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown options: digits"):
        DtmfAudio(digits=4)


def test_clips_are_validated() -> None:
    def clip(*presses: tuple[str, int, int], length: int = 1000, noise: int = 0) -> DtmfClip:
        return DtmfClip.model_validate(
            {
                "presses": [
                    {"key": k, "start_ms": s, "tone_ms": d, "low_level": 400, "high_level": 400}
                    for k, s, d in presses
                ],
                "length_ms": length,
                "noise": noise,
                "noise_seed": 1,
            }
        )

    assert clip(("1", 0, 100), ("1", 140, 100)).keys == "11"
    with pytest.raises(ValueError, match="at least 40 ms apart"):
        clip(("1", 0, 100), ("2", 120, 100))
    with pytest.raises(ValueError, match="end inside the clip"):
        clip(("1", 900, 200))
    with pytest.raises(ValueError, match="at most full scale"):
        clip(("1", 0, 100), noise=300)
    with pytest.raises(ValueError, match="key"):  # the A-D column is not on a phone keypad
        Press.model_validate(
            {"key": "A", "start_ms": 0, "tone_ms": 50, "low_level": 1, "high_level": 1}
        )


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
    text, audio = user.content
    assert isinstance(text, TextPart)
    assert text.text == prompt(data)
    assert data.question in text.text
    assert data.clip.keys not in text.text
    assert data.answer not in text.text
    assert isinstance(audio, AudioPart)
    assert audio.media is not None
    assert audio.media.mime_type == WAV
    wav = media.get(audio.media)
    assert wav == render(data.clip)
    pcm = read_wav(wav)
    assert pcm.rate == 8000
    assert pcm.duration_s == pytest.approx(data.clip.length_ms / 1000)
    assert len(spec.tools) == 0
    assert spec.limits.max_turns == 1
    assert EnvMetadata.model_validate(spec.metadata) == DtmfAudio.metadata
    assert spec.state == data.clip


# --- through the runtime --------------------------------------------------------------------
# (oracle 1.0, null 0.0, the shared store and bad tasks: tests/envs/test_media_envs.py)


def heard(media: MediaStore, request: ModelRequest) -> tuple[str, str]:
    found = first_audio(request.conversation, media)
    assert found is not None
    message, wav = found
    return message.text, heard_keys(wav)


@pytest.mark.parametrize("difficulty", ["medium", "hard"])
async def test_hearing_a_double_press_as_one_scores_zero(difficulty: str) -> None:
    """A listener that merges a key pressed twice in a row ("55" → "5") fails."""
    media = MediaStore()
    changed: list[str] = []

    def merging(request: ModelRequest) -> str:
        question, keys = heard(media, request)
        merged = "".join(k for k, _ in itertools.groupby(keys))
        answer = answer_question(question, merged)
        assert answer is not None
        if answer != answer_question(question, keys):
            changed.append(answer)
        return answer

    rollouts = await gymbus.run(env_for(difficulty, media), gymbus.FunctionModel(merging), n=30)
    wrong = [r for r in rollouts if r.reward == 0.0]
    assert len(wrong) == len(changed) >= 20  # only a double "0" in a digit sum survives it
    assert all(r.status == "scored" and r.reward in (0.0, 1.0) for r in rollouts)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_near_misses_score_zero(difficulty: str) -> None:
    for seed in range(10):
        spec = spec_for(difficulty, seed)
        data = data_of(spec)
        if data.question_kind == "sum":
            misses = [str(int(data.answer) - 1), str(int(data.answer) + 1)]
        else:
            last = "0" if data.answer[-1] != "0" else "1"
            misses = [
                data.answer[:-1] + last,  # one key wrong
                data.answer[:-1],  # one key missing
                data.answer + data.answer[-1],  # one key too many
            ]
        for miss in misses:
            score = await score_reply(spec, miss)
            assert score.reward == 0.0, miss
            assert score.scores["answer_parsed"] == 1.0
        assert (await score_reply(spec, data.answer)).reward == 1.0


async def test_leading_zeros_count() -> None:
    spec = next(
        s for s in (spec_for("easy", seed) for seed in range(100)) if data_of(s).answer[0] == "0"
    )
    answer = data_of(spec).answer
    assert (await score_reply(spec, f"The PIN is {answer}.")).reward == 1.0
    assert (await score_reply(spec, f"The PIN is {int(answer)}.")).reward == 0.0


async def test_positions_correct_measures_how_near_a_miss_was() -> None:
    spec = next(
        s
        for s in (spec_for("medium", seed) for seed in range(40))
        if data_of(s).question_kind == "number"
    )
    data = data_of(spec)
    wrong = data.answer[:3] + ("1" if data.answer[3] != "1" else "2") + data.answer[4:]
    score = await score_reply(spec, wrong)
    assert score.reward == 0.0
    assert score.scores["positions_correct"] == 7 / 8
    assert score.evidence["keys_pressed"] == data.clip.keys
    assert score.evidence["question_kind"] == "number"


# --- scoring --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4821", "4821"),
        ("The caller keyed in 0482.", "0482"),
        ("**0482**", "0482"),
        ("Account: 1234-5678", "12345678"),
        ("4 8 2 1", "4821"),
        ("*72 55511 # 207", "*7255511#207"),
        ("I heard 4 tones: 4821", "4821"),
        ("4821 or 4827", "4827"),
        ("I can't help with that.", None),
        ("no digits here", None),
    ],
)
def test_keyed_answer(text: str, expected: str | None) -> None:
    assert keyed_answer(text) == expected


async def test_the_extension_is_not_the_whole_sequence() -> None:
    spec = next(
        s
        for s in (spec_for("hard", seed) for seed in range(40))
        if data_of(s).question_kind == "extension"
    )
    data = data_of(spec)
    assert (await score_reply(spec, data.clip.keys)).reward == 0.0
    assert (await score_reply(spec, f"Extension {data.answer}")).reward == 1.0


def test_solver_hears_the_audio_not_the_task() -> None:
    spec = spec_for("easy", 1)
    media = MediaStore()
    question = "What number did the caller key in? Answer with the digits."
    for seed in (2, 3, 4):
        clip = generate(seed, "easy").clip
        audio = AudioPart(media=media.put(render(clip), WAV))
        user = UserMessage(content=(TextPart(text=question), audio), author="environment")
        assert DtmfAudioSolver(media).next_message(Transcript([user])).text == clip.keys
    # without access to the audio (another store) the solver cannot answer
    reply = DtmfAudioSolver(MediaStore()).next_message(Transcript(spec.messages))
    assert reply.text == "I cannot hear any audio to decode."


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What number did the caller key in? Answer with the digits.", "*0512#07"),
        ("What is the sum of the digits the caller keyed in? Answer with the number.", "15"),
        ("What extension did the caller key in after the # key? Answer with the digits.", "07"),
        ("Which keys did the caller press, in order? Answer with the keys only.", "*0512#07"),
        ("What colour is the phone?", None),
    ],
)
def test_answer_question(question: str, answer: str | None) -> None:
    assert answer_question(question, "*0512#07") == answer
    if "extension" in question:
        assert answer_question(question, "0512") is None
