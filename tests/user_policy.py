"""A fake-server policy that plays a simulated user: it reads its facts from the
instructions the LLM user sends and answers the agent's questions with them."""

from __future__ import annotations

import re

from tests.openai_server import SeenRequest, Turn


def fact_lines(request: SeenRequest) -> dict[str, str]:
    system = request.messages[0].text
    return dict(re.findall(r"^- (\w+): (.+)$", system, flags=re.MULTILINE))


def playing_user(request: SeenRequest) -> Turn:
    """A user model behind the fake server: answers questions from its facts."""
    facts = fact_lines(request)
    agent = request.last.text.lower()
    answers = []
    if "which city" in agent or "flying from" in agent:
        answers.append(f"We're flying from {facts['origin']}.")
    if "date" in agent or "when" in agent:
        answers.append(f"We want to fly on {facts['date']}.")
    if "how many" in agent:
        answers.append(f"There will be {facts['passengers']}.")
    if answers:
        return Turn(text=" ".join(answers))
    if "booked" in agent:
        return Turn(text="Great, thanks! [END: goal-met]")
    return Turn(text="Sorry, what do you need from me?")
