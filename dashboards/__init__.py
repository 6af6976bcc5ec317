"""Grafana dashboards as code (grafana-foundation-sdk, pinned), committed as JSON in ``dashboards/json``.

Architecture::

    influxql.py   InfluxQL target type for the SDK (the SDK ships no InfluxDB query model)
    common.py     datasource ref, template variables, panel helpers, annotation sources
    cluster.py host.py nf.py replication.py failover.py placement.py   one dashboard each
    build.py      generate + validate (round trip through the SDK's model) + write JSON
    publish.py    grafana-client: upload dashboards, turn ``event`` points into annotations
    cli.py        ``deftctl dashboards build|check|publish|queries``

Every panel reads the telemetry schema of :mod:`agent.schema` with InfluxQL through the Grafana
datasource whose uid is :data:`dashboards.common.DATASOURCE_UID` (provisioned by the ``grafana``
role from ``/etc/deft/telemetry.yml``). Migrations, failovers and placement decisions (the
``event`` measurement) become Grafana annotations tagged ``deft`` + their kind.
"""
