"""``deftctl dashboards ...``: build the committed JSON, check it, list queries, publish to Grafana."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from deftctl.config import ConfigError

# The SDK, grafana-client and the InfluxDB clients load inside the commands: `deftctl` mounts every
# part's CLI at start-up, and hosts that only run the agent do not install the dashboard libraries.
JSON_DIR = Path(__file__).resolve().parent / "json"

app = typer.Typer(no_args_is_help=True, help="Grafana dashboards as code (grafana-foundation-sdk).")


@app.command("build")
def build_cmd(out: Path = typer.Option(JSON_DIR, help="Output directory.")) -> None:
    """Regenerate and validate dashboards/json/*.json from the code."""
    from dashboards import build as builder  # noqa: PLC0415

    try:
        for p in builder.build_all(out):
            print(p)
    except builder.DashboardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc


@app.command()
def check(directory: Path = typer.Option(JSON_DIR, "--dir", help="Directory with the JSON.")) -> None:
    """Fail when the committed JSON is missing, stale or does not validate against the SDK model."""
    from dashboards import build as builder  # noqa: PLC0415

    try:
        builder.check(directory)
    except builder.DashboardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    print(f"{len(builder.DASHBOARDS)} dashboards valid and up to date")


@app.command()
def queries(
    run: bool = typer.Option(False, help="Also run each query (last hour) against InfluxDB."),
    telemetry: Path = typer.Option(Path("/etc/deft/telemetry.yml"), help="telemetry.yml (with --run)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List every panel's InfluxQL (optionally with the number of rows it returns now)."""
    from agent.config import load_telemetry  # noqa: PLC0415
    from agent.query import QueryClient, QueryError  # noqa: PLC0415
    from dashboards import build as builder  # noqa: PLC0415

    qc = None
    if run:
        try:
            qc = QueryClient(load_telemetry(telemetry))
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
    out: list[dict[str, object]] = []
    for uid in builder.DASHBOARDS:
        for pq in builder.panel_queries(builder.render(uid)):
            item: dict[str, object] = {"dashboard": pq.dashboard, "panel": pq.panel, "ref": pq.ref_id,
                                       "query": pq.query}
            if qc is not None:
                try:
                    item["rows"] = len(qc.rows(builder.expand(pq.query)))
                except QueryError as exc:
                    item["error"] = str(exc)
            out.append(item)
    if as_json:
        print(json.dumps(out, indent=1))
    else:
        for i in out:
            extra = f"  -> {i.get('rows', i.get('error'))}" if qc is not None else ""
            print(f"{i['dashboard']!s:<18} {str(i['panel'])[:40]:<40} {i['query']}{extra}")


@app.command()
def publish(
    url: str = typer.Option("", envvar="DEFT_GRAFANA_URL", help="Grafana URL."),
    token: str = typer.Option("", envvar="DEFT_GRAFANA_TOKEN", help="API token."),
    user: str = typer.Option("", envvar="DEFT_GRAFANA_USER", help="Basic-auth user."),
    password: str = typer.Option("", envvar="DEFT_GRAFANA_PASSWORD", help="Basic-auth password."),
    annotations: bool = typer.Option(True, help="Also publish event points as annotations."),
    since: str = typer.Option("24h", help="Event window for annotations (InfluxQL duration)."),
    telemetry: Path = typer.Option(Path("/etc/deft/telemetry.yml"), help="telemetry.yml (for events)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Upload the dashboards (and event annotations) to a Grafana server."""
    from agent.config import load_telemetry  # noqa: PLC0415
    from agent.query import QueryClient, QueryError  # noqa: PLC0415
    from dashboards import build as builder  # noqa: PLC0415
    from dashboards import publish as pub  # noqa: PLC0415

    if not url:
        print("error: no Grafana URL: pass --url or set DEFT_GRAFANA_URL", file=sys.stderr)
        raise typer.Exit(2)
    try:
        api = pub.connect(url, token, user, password)
        urls = pub.publish_dashboards(api, [builder.render(uid) for uid in builder.DASHBOARDS])
        added = skipped = 0
        if annotations:
            qc = QueryClient(load_telemetry(telemetry))
            added, skipped = pub.publish_annotations(api, pub.event_annotations(qc, since))
    except (pub.PublishError, QueryError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    doc = {"dashboards": urls, "annotations_added": added, "annotations_skipped": skipped}
    print(json.dumps(doc) if as_json else f"published {len(urls)} dashboards, {added} annotations "
          f"({skipped} already there)")
