"""gymbus runtime: messages, bus, episode loop, limits, errors, logging."""
