"""The composition root's parts; `chalicelib.bootstrap` assembles them into `Container`.

`ports.Ports` holds the ports (a dataclass); each mixin builds one area's services from
them on first use (`edge`, `rentals`, `refunds`, `events`); `production` holds the
production adapters, each built on first use too.
"""
