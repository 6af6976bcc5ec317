"""``python -m deploy ...`` = ``deftctl deploy ...``; ``... nfctl|nf ...`` = ``deftctl nfctl|nf ...``.

The host venv holds only the runtime packages (no matplotlib/torch), so the full ``deftctl`` cannot
load there; services on hosts run this entry point instead. It logs like ``deftctl`` (INFO to
stderr, which supervisor writes to the service's log): the FDU's failovers must be in its log.
"""

from deftctl import setup_logging
from deploy.cli import app
from nf.cli import app as nf_app
from nf.ctl_cli import app as nfctl_app

app.add_typer(nfctl_app, name="nfctl", help="DEFT control side (deftctl nfctl).")
app.add_typer(nf_app, name="nf", help="NF instances' control API (deftctl nf).")
setup_logging()
app(prog_name="deftctl deploy")
