"""``dtmf-audio``: read the keys a caller pressed off a recording of DTMF tones
(multi-modal perception: listening).

The policy gets a WAV clip (8 kHz, 16-bit mono) of a caller keying in a number on a phone
keypad, and one question: what number was keyed in, the sum of its digits, the extension
after the ``#`` key, or every key in order. The keys are only in the audio: the text says
what kind of number it is, never its digits or length.

Difficulty: easy is a 4-digit PIN of long, evenly loud tones with clear gaps and no noise;
medium an 8-digit account number with shorter tones and gaps, varying loudness, light
noise and a key pressed twice in a row (hearing "55" as one press fails); hard 12 keys —
a star code, a phone number, ``#`` and an extension, each number with a double press —
of short tones (45-70 ms, near the DTMF minimum) and short gaps, loudness varying
threefold, the two tones of a key at unequal levels (twist) and more noise.

No core capability is claimed: the task is perception (the ``multi-modal`` structure).
Verifier: exact string match (leading zeros count). For a number, an extension or the key
sequence, the answer is the last run of keypad symbols (``0-9``, ``*``, ``#``) in the
final answer, where spaces and hyphens between symbols are ignored ("48-21" and "4 8 2 1"
read as "4821") and runs of two or more asterisks are markdown emphasis, not keys; for a
sum, the last integer. Sub-scores ``answer_parsed`` and ``positions_correct`` (share of the
expected answer's characters matched at the same position — how near a wrong answer was)
are evidence only. Null check: "I can't help with that." holds no keypad symbol and no
integer, so it scores 0.
"""

from __future__ import annotations

import random
import re
from typing import Literal, NamedTuple

from pydantic import model_validator

from gymbus.envs.base import Difficulty
from gymbus.envs.builtin.audio import (
    SAMPLE_RATE,
    Tone,
    audio_question,
    decode_dtmf,
    dtmf_frequencies,
    first_audio,
    read_wav,
    synthesize,
    write_wav,
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
    "DtmfAudio",
    "DtmfAudioSolver",
    "DtmfClip",
    "DtmfTask",
    "Press",
    "answer_question",
    "generate",
    "heard_keys",
    "keyed_answer",
    "prompt",
    "render",
]

Key = Literal["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#"]
QuestionKind = Literal["number", "sum", "extension", "sequence"]
DIGITS = "0123456789"
MIN_GAP_MS = 40  # between presses: two 20 ms analysis windows of silence
_PER_MS = SAMPLE_RATE // 1000


class Press(Frozen):
    """One key press: the key, when it starts and how long it sounds (ms), and the peak
    level of its low and high tone (per mille of full scale)."""

    key: Key
    start_ms: int
    tone_ms: int
    low_level: int
    high_level: int


class DtmfClip(Frozen):
    presses: tuple[Press, ...]
    length_ms: int
    noise: int  # peak of the uniform background noise, per mille of full scale
    noise_seed: int

    @model_validator(mode="after")
    def _playable(self) -> DtmfClip:
        end = 0
        for press in self.presses:
            if press.start_ms < end + (MIN_GAP_MS if end else 0):
                raise ValueError(f"presses must be in order, at least {MIN_GAP_MS} ms apart")
            if press.low_level + press.high_level + self.noise > 1000:
                raise ValueError("levels and noise must add up to at most full scale")
            end = press.start_ms + press.tone_ms
        if end > self.length_ms:
            raise ValueError("the last press must end inside the clip")
        return self

    @property
    def keys(self) -> str:
        return "".join(p.key for p in self.presses)


class DtmfTask(Frozen):
    clip: DtmfClip
    what: str  # what the caller keys in, as the prompt says it
    question: str
    question_kind: QuestionKind
    answer: str


class _Level(NamedTuple):
    tone_ms: tuple[int, int]
    gap_ms: tuple[int, int]
    level: tuple[int, int]  # per mille of full scale, of the low tone
    twist: tuple[int, int]  # high tone level as a percentage of the low one
    noise: int  # per mille
    kinds: tuple[QuestionKind, ...]


_LEVELS: dict[Difficulty, _Level] = {
    "easy": _Level((120, 180), (100, 160), (400, 450), (100, 100), 0, ("number",)),
    "medium": _Level((75, 110), (50, 80), (250, 450), (100, 100), 20, ("number", "sum")),
    "hard": _Level((45, 70), (45, 70), (150, 450), (70, 100), 40, ("extension", "sum", "sequence")),
}
_WHAT: dict[Difficulty, str] = {
    "easy": "a PIN",
    "medium": "an account number",
    "hard": "a star code, a phone number, the # key and an extension",
}


def _digits(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(DIGITS) for _ in range(n)]


def _with_double(rng: random.Random, digits: list[str]) -> list[str]:
    """``digits`` with one digit repeated by the next (a key pressed twice in a row)."""
    i = rng.randrange(len(digits) - 1)
    digits[i + 1] = digits[i]
    return digits


def _keys(rng: random.Random, difficulty: Difficulty) -> str:
    if difficulty == "easy":
        return "".join(_digits(rng, 4))
    if difficulty == "medium":
        return "".join(_with_double(rng, _digits(rng, 8)))
    number = rng.randint(4, 6)  # star code (3) + number + '#' + extension = 12 keys
    code = "".join(_digits(rng, 2))
    digits = "".join(_with_double(rng, _digits(rng, number)))
    extension = "".join(_with_double(rng, _digits(rng, 8 - number)))
    return f"*{code}{digits}#{extension}"


def _clip(rng: random.Random, keys: str, level: _Level) -> DtmfClip:
    presses: list[Press] = []
    at = rng.randint(100, 300)
    for key in keys:
        low = rng.randint(*level.level)
        high = low * rng.randint(*level.twist) // 100
        tone = rng.randint(*level.tone_ms)
        presses.append(Press(key=key, start_ms=at, tone_ms=tone, low_level=low, high_level=high))
        at += tone + rng.randint(*level.gap_ms)
    length = at + rng.randint(100, 300)
    return DtmfClip(
        presses=tuple(presses), length_ms=length, noise=level.noise, noise_seed=rng.randrange(2**32)
    )


def _question(kind: QuestionKind, keys: str) -> tuple[str, str]:
    """The question's text and answer."""
    if kind == "sum":
        note = " (the * and # keys are not digits)" if not keys.isdigit() else ""
        text = f"What is the sum of the digits the caller keyed in{note}? Answer with the number."
        return text, str(sum(int(k) for k in keys if k.isdigit()))
    if kind == "extension":
        text = "What extension did the caller key in after the # key? Answer with the digits."
        return text, keys.split("#", 1)[1]
    if kind == "sequence":
        text = (
            "Which keys did the caller press, in order? Answer with the keys only, writing "
            "the star and hash keys as * and #."
        )
        return text, keys
    return "What number did the caller key in? Answer with the digits.", keys


def generate(seed: int, difficulty: Difficulty) -> DtmfTask:
    """The task for ``seed`` at ``difficulty`` (deterministic)."""
    rng = random.Random(seed)
    level = _LEVELS[difficulty]
    keys = _keys(rng, difficulty)
    clip = _clip(rng, keys, level)
    kind = rng.choice(level.kinds)
    text, answer = _question(kind, keys)
    return DtmfTask(
        clip=clip, what=_WHAT[difficulty], question=text, question_kind=kind, answer=answer
    )


def render(clip: DtmfClip) -> bytes:
    """The clip as WAV bytes (deterministic: same clip, same bytes)."""
    tones = []
    for press in clip.presses:
        low, high = dtmf_frequencies(press.key)
        tones.append(
            Tone(
                start=press.start_ms * _PER_MS,
                length=press.tone_ms * _PER_MS,
                partials=((low, press.low_level / 1000), (high, press.high_level / 1000)),
            )
        )
    samples = synthesize(
        clip.length_ms * _PER_MS,
        tones,
        noise=clip.noise / 1000,
        rng=random.Random(clip.noise_seed),
    )
    return write_wav(samples)


def prompt(task: DtmfTask) -> str:
    return (
        f"The audio is a recording of a phone call in which the caller keys in {task.what} "
        f"on the telephone keypad (you hear the keypad's DTMF tones). {task.question}"
    )


_EMPHASIS = re.compile(r"\*{2,}")
_KEY_RUN = re.compile(r"[0-9*#](?:[ \t-]*[0-9*#])*")
_SEPARATORS = re.compile(r"[ \t-]")


def keyed_answer(text: str) -> str | None:
    """The last run of keypad symbols in ``text`` with the spaces and hyphens between them
    dropped ("account 1234-5678." → ``"12345678"``), or ``None``; ``**`` (markdown
    emphasis) is not a key."""
    runs = _KEY_RUN.findall(_EMPHASIS.sub(" ", text))
    return _SEPARATORS.sub("", runs[-1]) if runs else None


def _evidence(extract: Extractor, task: DtmfTask) -> SubScorer:
    """Sub-scores ``answer_parsed`` and ``positions_correct``; the keys that were pressed."""

    def sub_score(episode: CompletedEpisode) -> SubScore:
        answer = final_answer(episode.transcript)
        got = extract(answer.text) if answer is not None else None
        matched = sum(a == b for a, b in zip(got or "", task.answer, strict=False))
        return SubScore(
            scores={
                "answer_parsed": 1.0 if got is not None else 0.0,
                "positions_correct": matched / len(task.answer),
            },
            evidence={
                "question_kind": task.question_kind,
                "keys_pressed": task.clip.keys,
                "noise_per_mille": task.clip.noise,
            },
        )

    return sub_score


class DtmfAudio(MediaEnvironment):
    name = "dtmf-audio"
    description = (
        "Listen to a seeded recording of telephone keypad (DTMF) tones and say which number "
        "the caller keyed in, its digit sum, or the extension after '#'. Short tones, noise "
        "and repeated keys on harder levels. Reward: exact match of the keyed digits."
    )
    metadata = EnvMetadata(
        rollout_structures=("multi-modal",),
        core_capabilities=(),
        knowledge_domain="telephony",
        task_type="audio-decoding",
        verification_method="exact-match",
    )

    def task(self, seed: int) -> Task:
        data = generate(seed, self.difficulty)
        return self.make_task(seed, data)

    def episode(self, task: Task) -> EpisodeSpec:
        data = self.task_data(task, DtmfTask)
        extract = last_integer if data.question_kind == "sum" else keyed_answer
        return EpisodeSpec(
            task=task,
            messages=audio_question(self.media, prompt(data), render(data.clip)),
            verifier=ExactMatchVerifier(
                data.answer, extract=extract, sub_scorers=(_evidence(extract, data),)
            ),
            solver=DtmfAudioSolver(self.media),
            limits=Limits(max_turns=1),
            metadata=self.metadata.model_dump(mode="json"),
            state=data.clip,
        )


class DtmfAudioSolver:
    """The reference solver: finds the question in the conversation, reads the WAV from the
    media store through the message's :class:`MediaRef` (as a model would hear it), decodes
    the key presses with Goertzel filters (:func:`heard_keys`) and answers. Never reads the
    task; a pure function of the conversation."""

    def __init__(self, media: MediaStore) -> None:
        self._media = media

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        found = first_audio(conversation, self._media)
        if found is None:
            return AssistantMessage(content="I cannot hear any audio to decode.")
        message, wav = found
        answer = answer_question(message.text, heard_keys(wav))
        return AssistantMessage(content=answer or "I do not understand the question.")


def heard_keys(wav: bytes) -> str:
    """The keys pressed in a WAV recording, in order (DTMF decoding, see
    :func:`~gymbus.envs.builtin.audio.decode_dtmf`)."""
    return "".join(press.key for press in decode_dtmf(read_wav(wav)))


_ASKS: tuple[tuple[QuestionKind, str], ...] = (
    ("sum", "What is the sum of the digits the caller keyed in"),
    ("extension", "What extension did the caller key in after the # key?"),
    ("sequence", "Which keys did the caller press, in order?"),
    ("number", "What number did the caller key in?"),
)


def answer_question(question: str, keys: str) -> str | None:
    """The answer to this environment's ``question`` given the keys heard, or ``None`` for
    a question it does not ask (or an extension question without a ``#``)."""
    kind = next((kind for kind, asks in _ASKS if asks in question), None)
    if kind == "sum":
        return str(sum(int(k) for k in keys if k.isdigit()))
    if kind == "extension":
        return keys.split("#", 1)[1] if "#" in keys else None
    return keys if kind is not None else None
