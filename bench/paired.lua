-- Overhead measured in pairs inside one process: the workload runs
-- plain, then under a started profiler, then plain again..., with the
-- order flipped every pair. Noise from the rest of a shared machine
-- changes slowly, so both halves of a pair see the same machine; the
-- median of the per-pair ratios is much steadier than comparing whole
-- processes. Time is os.clock(), the CPU time of the whole process, so
-- the wall clock's sampler thread is counted. Start and stop are outside
-- the timed part: their cost is printed apart, in milliseconds.
-- Runs on Lua 5.4, 5.3 and 5.1 (lua5.3 bench/paired.lua ... with
-- lua5.3/sprof.so on LUA_CPATH_5_3).
--   lua5.4 bench/paired.lua INTERVAL CLOCK lua|native PAIRS script.lua [args...]
local sprof = require "sprof"
local unpack = table.unpack or unpack  -- 5.1: a global
local interval, clock, mode = tonumber(arg[1]), arg[2], arg[3]
local pairs_n, script = tonumber(arg[4]), arg[5]
local args = { n = #arg - 5, unpack(arg, 6) }
local chunk = assert(loadfile(script))
arg = { [0] = script, unpack(args, 1, args.n) }
print = function () end  -- the workloads print their result

local p = sprof.new { interval = interval, clock = clock, native = mode == "native" }

local function run () chunk(unpack(args, 1, args.n)) end

-- Each half starts from a collected heap: otherwise one half pays for
-- the other's garbage, and the collector's cycle spans several halves.
local function plain ()
  collectgarbage()
  local t0 = os.clock()
  run()
  return os.clock() - t0
end

local fixed = 0
local function profiled ()
  collectgarbage()
  local t0 = os.clock()
  p:start()
  local t1 = os.clock()
  run()
  local t2 = os.clock()
  p:stop()
  fixed = fixed + (t1 - t0) + (os.clock() - t2)
  return t2 - t1
end

local function median (t)
  table.sort(t)
  local half = math.floor(#t / 2)
  return #t % 2 == 1 and t[half + 1] or (t[half] + t[half + 1]) / 2
end

run()  -- warm up: the first run pays for page faults and cache misses
local ratios, base = {}, {}
for i = 1, pairs_n do
  local a, b
  if i % 2 == 1 then a = plain(); b = profiled()
  else b = profiled(); a = plain() end
  ratios[#ratios + 1] = b / a
  base[#base + 1] = a
end
local info = p:info()
io.write(string.format("%.4f %.3f %.2f %d %.2f\n", median(ratios), median(base),
  fixed / pairs_n * 1e3, info.samples, info.samples / (info.duration > 0 and info.duration or 1)))
