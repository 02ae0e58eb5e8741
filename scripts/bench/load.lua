-- The wrk script of every case (scripts/bench/wrk.ts runs it). Requests are formatted once in
-- init() and handed out round-robin, so a request costs wrk a table lookup whatever the number of
-- keys; the same script runs against both sides of a comparison, so wrk's own cost is the same.
--
--   wrk ... -s load.lua URL -- KEYS BODY EXPECT STOP_AFTER
--   KEYS        file with one API key a line (sent as Authorization: Bearer), or "-" for none
--   BODY        file whose bytes are POSTed as JSON, or "-" for GET
--   EXPECT      file with the exact body each response must have (else it counts as a mismatch),
--               or "-": then wrk does not read bodies at all (the fast path)
--   STOP_AFTER  stop once this many responses arrived (0: run for the whole -d duration)
--
-- done() prints one line, "BENCH {json}", which wrk.ts parses.

local requests, count, at = {}, 0, 0
local expected, stopAfter = nil, 0
-- Globals, read from done() through thread:get().
mismatches = 0
responses = 0

local function slurp(path)
  local f = assert(io.open(path, 'rb'))
  local text = f:read('*a')
  f:close()
  return text
end

function init(args)
  local body = args[2] ~= '-' and slurp(args[2]) or nil
  local method = body and 'POST' or 'GET'
  local headers = body and { ['Content-Type'] = 'application/json' } or {}
  if args[1] == '-' then
    count = 1
    requests[1] = wrk.format(method, nil, headers, body)
  else
    for key in io.lines(args[1]) do
      headers['Authorization'] = 'Bearer ' .. key
      count = count + 1
      requests[count] = wrk.format(method, nil, headers, body)
    end
  end
  expected = args[3] ~= '-' and slurp(args[3]) or nil
  stopAfter = tonumber(args[4]) or 0
  -- wrk parses headers and bodies only when response() exists after init().
  if expected == nil and stopAfter == 0 then response = nil end
end

function request()
  at = at + 1
  if at > count then at = 1 end
  return requests[at]
end

function response(status, headers, body)
  responses = responses + 1
  if expected ~= nil and (status ~= 200 or body ~= expected) then mismatches = mismatches + 1 end
  if stopAfter > 0 and responses == stopAfter then
    -- wrk's main thread sleeps for the whole -d duration; this line has wrk.ts send it SIGINT,
    -- which ends the sleep and prints the results as at the end of a timed run.
    io.write('BENCH stop\n')
    io.flush()
    wrk.thread:stop()
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency)
  local m = 0
  for _, t in ipairs(threads) do m = m + t:get('mismatches') end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"mismatches":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), m,
    e.connect, e.read, e.write, e.status, e.timeout))
end
