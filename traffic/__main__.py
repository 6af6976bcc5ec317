"""``python -m traffic ...`` = ``deftctl traffic ...`` without loading the other parts' CLIs."""

from traffic.cli import app

app(prog_name="python -m traffic")
