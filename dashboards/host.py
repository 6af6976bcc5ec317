"""Per host: CPU, memory, load, NIC rates and drops, OVS ports and VXLAN tunnels, the agent itself."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.common import HOST_FILTER, event_annotation, host_variable, new_dashboard, row, ts

UID = "deft-host"


def build() -> db.Dashboard:
    w = f"$timeFilter AND {HOST_FILTER}"
    g = 'GROUP BY time($__interval), "host"'
    return (
        new_dashboard(UID, "DEFT / Hosts", "Resources, NICs, OVS ports/tunnels and the agent of each host.")
        .with_variable(host_variable())
        .annotation(event_annotation("nf_start", "green"))
        .annotation(event_annotation("nf_stop", "orange"))
        .with_row(row("Resources"))
        .with_panel(ts("CPU", [(f'SELECT mean("cpu_percent") FROM "host" WHERE {w} {g}', "$tag_host")],
                       "percent", width=8))
        .with_panel(ts("Memory used", [(f'SELECT mean("mem_used_bytes") FROM "host" WHERE {w} {g}',
                                        "$tag_host")], "bytes", width=8))
        .with_panel(ts("Load (1 min)", [(f'SELECT mean("load1") FROM "host" WHERE {w} {g}', "$tag_host")],
                       "short", width=8))
        .with_row(row("NICs"))
        .with_panel(ts("NIC packets/s", [
            (f'SELECT mean("rx_pps") FROM "nic" WHERE {w} GROUP BY time($__interval), "host", "interface"',
             "rx $tag_host/$tag_interface"),
            (f'SELECT mean("tx_pps") FROM "nic" WHERE {w} GROUP BY time($__interval), "host", "interface"',
             "tx $tag_host/$tag_interface")], "pps"))
        .with_panel(ts("NIC bytes/s", [
            (f'SELECT mean("rx_bps") FROM "nic" WHERE {w} GROUP BY time($__interval), "host", "interface"',
             "rx $tag_host/$tag_interface"),
            (f'SELECT mean("tx_bps") FROM "nic" WHERE {w} GROUP BY time($__interval), "host", "interface"',
             "tx $tag_host/$tag_interface")], "Bps"))
        .with_panel(ts("NIC drops/s", [
            (f'SELECT mean("drops_pps") FROM "nic" WHERE {w} GROUP BY time($__interval), "host", "interface"',
             "$tag_host/$tag_interface")], "pps"))
        .with_row(row("Open vSwitch"))
        .with_panel(ts("VXLAN tunnels packets/s", [
            (f'SELECT mean("tx_pps") FROM "ovs_port" WHERE {w} AND "port_type" = \'vxlan\' '
             'GROUP BY time($__interval), "host", "port"', "tx $tag_host/$tag_port"),
            (f'SELECT mean("rx_pps") FROM "ovs_port" WHERE {w} AND "port_type" = \'vxlan\' '
             'GROUP BY time($__interval), "host", "port"', "rx $tag_host/$tag_port")], "pps"))
        .with_panel(ts("OVS port drops/s", [
            (f'SELECT mean("drops_pps") FROM "ovs_port" WHERE {w} GROUP BY time($__interval), "host", "port"',
             "$tag_host/$tag_port")], "pps"))
        .with_row(row("Agent"))
        .with_panel(ts("Telemetry spool", [
            (f'SELECT last("points_spooled") FROM "agent" WHERE {w} {g}', "spooled $tag_host"),
            (f'SELECT last("spool_dropped_total") FROM "agent" WHERE {w} {g}', "dropped $tag_host")],
            "none", "Points buffered on disk while InfluxDB is unreachable; dropped = spool overflow."))
        .with_panel(ts("Agent collection time", [
            (f'SELECT mean("collect_ms") FROM "agent" WHERE {w} {g}', "$tag_host")], "ms"))
    )
