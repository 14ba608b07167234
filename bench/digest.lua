-- writeMessage with Digest auth. wrk's LuaJIT has no MD5 or SHA-256, so bench/run.py
-- precomputes the Authorization headers: many nonces fetched from the server, each used
-- with nc = 1, 2, 3, ... (the nonces interleaved, so the requests in flight on one nonce
-- stay far inside the server's window of 64). Each header is used exactly once; when a
-- thread runs out, it starts over and the replays show as non-2xx answers.
-- Arguments (after --): the folder of the header files (thread-<n>.txt, one a line).
dofile("bench/report.lua")

local BODY = '{"data":{"msg":"benchmark entry from wrk, one line","severity":6}}'
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  requests = {}
  for line in io.lines(args[1] .. "/thread-" .. id .. ".txt") do
    requests[#requests + 1] = wrk.format("POST", nil, {
      ["Host"] = wrk.headers["Host"],
      ["Content-Type"] = "application/json",
      ["Authorization"] = line,
    }, BODY)
  end
  n = 0
end

function request()
  n = n + 1
  if n > #requests then n = 1 end
  return requests[n]
end
