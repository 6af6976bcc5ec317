"""The per-host DEFT agent: telemetry to InfluxDB and the NF lifecycle/migration commands.

Architecture (one box per module)::

    collectors/  host, nic, ovs, nf  --Point-->  daemon.Agent  --lines-->  writer.TelemetrySink
         |                                        (1 s tick)                 |        \\
         |                                                                   |   spool.Spool (disk, bounded)
         +-- schema.py: the ONE telemetry schema every Point is validated against
                                                                             v
                                                        InfluxDB 1.x (/write) or 2.x/3.x (influxdb-client)

    commands.py (``deftctl agent nf|migrate|status``) --> launcher.py (process | docker+OVS)
                                                      --> event points through the same sink

Reads (dashboards tests, placement service) go through :mod:`agent.query` in InfluxQL, which
InfluxDB 1.x, 2.x and 3.x all answer.
"""
