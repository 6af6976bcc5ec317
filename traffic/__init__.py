"""``traffic``: paced packet generators and measuring sinks for DEFT-RL experiments.

How the pieces fit (read top to bottom)::

    profile.yml --(deftctl.config.load)--> TrafficProfile          (profile.py)
         |                                                              |
         |   flows x sizes --(scapy, once)--> byte templates            (packets.py)
         |   pattern --> rate(t) pps, flow weights (uniform / Zipf)      (patterns.py)
         v                                                              |
    Generator: Pacer (token bucket over rate(t), sleep then busy-wait)   (pacing.py, generator.py)
         |     per packet: patch stamp (flow id, seq, send time ns) into the
         |     template with struct.pack_into and hand it to ONE socket  (senders.py)
         |     -- or write a pcap and let tcpreplay send it              (replay.py)
         v
    network (veth / OVS VXLAN overlay / an NF chain)
         v
    Sink: UDP socket or AF_PACKET, parse the stamp (stamp.py), per-flow
          counters: received, unique, duplicates, reordered, bytes,
          one-way latency histogram (latency.py)                        (sink.py)
         v
    results: JSON + CSV; merged with the generator's per-flow sent
             counts, loss becomes exact (sent - unique)                  (results.py)

Across hosts, ``deftctl traffic run`` (remote.py, inventory.py) reads the Ansible inventory's
``traffic`` group, starts sinks then generators over SSH and merges their reports.

Why a payload stamp and not the NF shim: the stamp is end-to-end (client -> sink), so it survives
any NF chain that forwards payloads untouched; the NF shim (``nf/shim.py``) is the data plane's own
per-hop header and is stripped before egress.
"""
