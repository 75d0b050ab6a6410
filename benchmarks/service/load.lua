-- wrk script of the service benchmark: the API key header, paced requests, a JSON summary.
-- Environment: API_KEY, USERS (comma-separated shop user ids), MODE (recommend | events | events20),
-- DELAY_MS (pause of each connection between requests: connections * 1000 / target rate), RUN_ID.

local key = os.getenv("API_KEY") or ""
local mode = os.getenv("MODE") or "recommend"
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local run_id = os.getenv("RUN_ID") or "0"
local users = {}
for u in string.gmatch(os.getenv("USERS") or "U00001", "[^,]+") do users[#users + 1] = u end
local items = {}
for i = 1, 2000 do items[i] = string.format("I%05d", i - 1) end

local thread_no = 0
local counter = 0

function setup(thread)
  thread_no = thread_no + 1
  thread:set("thread_no", thread_no)
end

local function event(n, i)
  local u = users[(n % #users) + 1]
  return string.format('{"event_id":"bench-%s-%d-%d-%d","user_id":"%s","item_id":"%s","event_type":"view"}',
    run_id, thread_no, n, i, u, items[((n * 7 + i) % #items) + 1])
end

function request()
  counter = counter + 1
  if mode == "recommend" then
    local u = users[(counter % #users) + 1]
    return wrk.format("GET", "/v1/recommendations?user_id=" .. u .. "&k=10", { ["X-API-Key"] = key })
  end
  local n = (mode == "events20") and 20 or 1
  local parts = {}
  for i = 1, n do parts[i] = event(counter, i) end
  local body = '{"events":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/v1/events", { ["X-API-Key"] = key, ["Content-Type"] = "application/json" }, body)
end

function delay()
  return delay_ms
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%d,' ..
    '"errors_status":%d,"errors_connect":%d,"errors_read":%d,"errors_timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.timeout))
end
