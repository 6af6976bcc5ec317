"""The DEFT data plane: stateful NFs with output commit, failover and loss-free migration.

Inside one NF instance (``nf.engine``, ``nf.instance``, ``nf.replication``, ``nf.types``) packets are
stamped, processed in order per flow, batched and released only after the secondary acknowledged the
batch's state delta. Around the instances (``nf.store``, ``nf.steering``, ``nf.failover``,
``nf.migration``, ``nf.balancer``, ``nf.globalstate``, ``nf.checkpoint``) the control side keeps
ownership, steering and global state in one :class:`nf.store.base.StateStore`.
"""
