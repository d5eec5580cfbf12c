-- wrk script of bench/booking.py: POST /api/v1/bookings, every request a different (property, stay).
--
-- Arguments after `--`: a file of property ids (one per line), the bearer token, the first slot, and the UTC epoch
-- of the first check-in day. Slot n books property n mod P for the 3 nights starting (n div P) * 3 days after that
-- day, so no two requests of a run ever overlap. Run with one wrk thread (-t1): the slot counter is per thread.
-- `done` prints one JSON line: counts, the next free slot, and 1,000 equal-mass points of the latency
-- distribution (microseconds), so that the caller can merge rounds into one distribution.

local NIGHTS = 3
local DAY_S = 86400

local property_ids, token, base_epoch = {}, "", 0
first_slot, sent, created, refused = 0, 0, 0, 0

function init(args)
  for line in io.lines(args[1]) do
    property_ids[#property_ids + 1] = line
  end
  token, first_slot, base_epoch = args[2], tonumber(args[3]), tonumber(args[4])
end

function request()
  local slot = first_slot + sent
  sent = sent + 1
  local check_in = base_epoch + math.floor(slot / #property_ids) * NIGHTS * DAY_S
  local body = string.format('{"property_id":"%s","check_in":"%s","check_out":"%s"}',
    property_ids[slot % #property_ids + 1], os.date("!%Y-%m-%d", check_in),
    os.date("!%Y-%m-%d", check_in + NIGHTS * DAY_S))
  return wrk.format("POST", "/api/v1/bookings",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end

function response(status, headers, body)
  if status == 201 then created = created + 1 else refused = refused + 1 end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local thread = threads[1]
  local points = {}
  for i = 1, 1000 do
    points[i] = string.format("%d", latency:percentile((i - 0.5) / 10))
  end
  local errors = summary.errors
  io.write(string.format(
    '{"responses":%d,"duration_us":%d,"next_slot":%d,"created":%d,"other_status":%d,"socket_errors":%d,'
      .. '"latency_us":[%s]}\n',
    summary.requests, summary.duration, thread:get("first_slot") + thread:get("sent"), thread:get("created"),
    thread:get("refused"), errors.connect + errors.read + errors.write + errors.timeout, table.concat(points, ",")))
end
