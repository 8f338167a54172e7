-- The overhead of memory profiling, measured as bench/paired.lua does
-- but in triples: the workload runs plain, under a profiler of time only
-- and under one that profiles memory too, by turns inside one process,
-- the order rotating every triple. Time is os.clock(); start and stop
-- are outside the timed part. Prints the medians of the per-triple
-- ratios memory/time and memory/plain (and time/plain), the median plain
-- run in seconds, and the MiB each run allocates (as the profile says).
--   lua5.4 bench/memory_paired.lua RATE CLOCK TRIPLES script.lua [args...]
-- RATE: bytes between sampled allocations (0: the default, 512 KiB).
-- CLOCK: "cpu" or "wall". The wall clock's sampler thread makes glibc's
-- malloc take its locking paths for the rest of the process (plain runs
-- included): on malloc-bound workloads that costs more than sprof.
local sprof = require "sprof"
local rate, clock, triples, script = tonumber(arg[1]), arg[2], tonumber(arg[3]), arg[4]
local args = table.pack(table.unpack(arg, 5))
local chunk = assert(loadfile(script))
arg = { [0] = script, table.unpack(args, 1, args.n) }
print = function () end  -- the workloads print their result

local timed = sprof.new { native = false, clock = clock }
local memory = sprof.new { native = false, clock = clock, memory = true,
                           memory_rate = rate > 0 and rate or nil }

local function run () chunk(table.unpack(args, 1, args.n)) end

-- each run starts from a collected heap (see bench/paired.lua)
local function plain ()
  collectgarbage()
  local t0 = os.clock()
  run()
  return os.clock() - t0
end

local function profiled (p)
  return function ()
    collectgarbage()
    p:start()
    local t0 = os.clock()
    run()
    local t = os.clock() - t0
    p:stop()
    return t
  end
end

local modes = { plain, profiled(timed), profiled(memory) }

local function median (t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

run()  -- warm up
local vs_time, vs_plain, time_plain, base = {}, {}, {}, {}
for i = 1, triples do
  local t = {}
  for k = 0, 2 do
    local m = (i + k) % 3 + 1
    t[m] = modes[m]()
  end
  vs_time[i], vs_plain[i], time_plain[i] = t[3] / t[2], t[3] / t[1], t[2] / t[1]
  base[i] = t[1]
end
local info = memory:info()
io.write(string.format("%.4f %.4f %.4f %.3f %.1f\n", median(vs_time), median(vs_plain),
  median(time_plain), median(base), info.alloc_bytes / triples / 2^20))
