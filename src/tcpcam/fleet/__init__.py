"""The recorder fleet: many recorders share many cameras through NATS JetStream and S3-compatible storage.

One module per job (see ``docs/fleet.md`` for the design):

- :mod:`~tcpcam.fleet.config`: the fleet's options (pure: importable without the fleet's extra);
- :mod:`~tcpcam.fleet.aio`: Twisted's asyncio reactor, coroutines as Deferreds and back;
- :mod:`~tcpcam.fleet.natslink`: the NATS connection, the buckets and the stream;
- :mod:`~tcpcam.fleet.mirror`: a local copy of a key-value bucket, kept by a watch;
- :mod:`~tcpcam.fleet.registry`: the camera registry (``tcpcam fleet add|remove|list|move``);
- :mod:`~tcpcam.fleet.leases`: one lease per camera, on the server's TTL and this recorder's own clock;
- :mod:`~tcpcam.fleet.balancer`: which cameras this recorder takes and lets go (pure);
- :mod:`~tcpcam.fleet.events`: connects, disconnects, motion, gaps and lease changes on a stream;
- :mod:`~tcpcam.fleet.keys`: the object store's key layout;
- :mod:`~tcpcam.fleet.spool`: finished segments waiting for the object store, within a bound;
- :mod:`~tcpcam.fleet.uploader`: the upload thread (write-once puts, in order);
- :mod:`~tcpcam.fleet.s3footage`: the footage read API over the object store;
- :mod:`~tcpcam.fleet.live`: live frames from the lease holder, over NATS request and reply;
- :mod:`~tcpcam.fleet.view`: every camera of the fleet for the web interface;
- :mod:`~tcpcam.fleet.metrics`: per-recorder and per-camera Prometheus metrics;
- :mod:`~tcpcam.fleet.service`: the fleet member, a Twisted service around the recorder.

Everything but :mod:`~tcpcam.fleet.config`, :mod:`~tcpcam.fleet.balancer` and
:mod:`~tcpcam.fleet.keys` needs the ``fleet`` extra (``pip install tcpcam[fleet]``).
"""
