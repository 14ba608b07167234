"""vapixlog: the VAPIX Log API, device service and client."""
