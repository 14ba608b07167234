"""Remote syslog: the device forwards its log to up to two servers (remote-syslog.md).

`config` (servers, defaults, storage), `formats` (AXIS, RFC 3164, RFC 5424 and framing),
`transport` (UDP, TCP, TLS links), `sender` (one server: filter, bounded queue, reconnects),
`report` (rate-limited warnings in the log), `service` (one device's remote syslog).
`remotesyslog.cgi` is its API.
"""
