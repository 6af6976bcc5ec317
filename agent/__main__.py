"""``python -m agent ...`` = ``deftctl agent ...`` (used where only the agent package matters)."""

from agent.cli import app

app(prog_name="deftctl agent")
