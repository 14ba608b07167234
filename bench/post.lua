-- A static writeMessage POST (the floor and the Basic-auth scenarios). Static requests are
-- built once by wrk, so the load generator costs as little as possible.
dofile("bench/report.lua")
wrk.method = "POST"
wrk.body = '{"data":{"msg":"benchmark entry from wrk, one line","severity":6}}'
wrk.headers["Content-Type"] = "application/json"
