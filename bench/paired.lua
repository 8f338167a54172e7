-- Overhead measured in pairs inside one process: the workload runs
-- plain, then under a started profiler, then plain again..., with the
-- order flipped every pair. Noise from the rest of a shared machine
-- changes slowly, so both halves of a pair see the same machine; the
-- median of the per-pair ratios is much steadier than comparing whole
-- processes. Time is os.clock(), the CPU time of the whole process, so
-- the wall clock's sampler thread is counted. Start and stop are outside
-- the timed part: their cost is printed apart, in milliseconds.
-- Runs on Lua 5.4, 5.3, 5.1 and LuaJIT (lua5.3 bench/paired.lua ... with
-- lua5.3/sprof.so on LUA_CPATH_5_3). The sizes on the "-- pair:" lines
-- are made for about 0.12 s on Lua 5.4; where one run is much shorter
-- (LuaJIT compiles some workloads to 5 times as fast), each half runs the
-- workload as many times as make about 0.1 s. On LuaJIT stopping the
-- profiler flushes the compiled code (LuaJIT's profiler does, under sprof
-- and jit.p alike), and jit.p's start flushes it too: there every half
-- starts with none and compiles again, plain halves as profiled ones.
-- On LuaJIT the mode "jp" (or "jp-stacks") times LuaJIT's own profiler
-- instead, as luajit -jp=i1 (-jp=Gi1) runs it, for bench/jitp; its
-- report goes to SPROF_JITP_OUTPUT (default /dev/null) at each stop.
-- The mode "none" starts nothing: plain against plain, the noise floor.
--   lua5.4 bench/paired.lua INTERVAL CLOCK lua|native PAIRS script.lua [args...]
--   luajit bench/paired.lua INTERVAL CLOCK jp|jp-stacks|none PAIRS script.lua [args...]
local sprof = require "sprof"
local unpack = table.unpack or unpack  -- 5.1: a global
local interval, clock, mode = tonumber(arg[1]), arg[2], arg[3]
local pairs_n, script = tonumber(arg[4]), arg[5]
local args = { n = #arg - 5, unpack(arg, 6) }
local chunk = assert(loadfile(script))
arg = { [0] = script, unpack(args, 1, args.n) }
print = function () end  -- the workloads print their result

local p, start, stop
if mode == "jp" or mode == "jp-stacks" then
  local jitp = require "jit.p"
  local how = (mode == "jp-stacks" and "G" or "") .. "i" .. math.floor(interval * 1000 + 0.5)
  local output = os.getenv("SPROF_JITP_OUTPUT") or "/dev/null"
  start = function () jitp.start(how, output) end
  stop = jitp.stop
elseif mode == "none" then
  start, stop = function () end, function () end
else
  p = sprof.new { interval = interval, clock = clock, native = mode == "native" }
  start = function () p:start() end
  stop = function () p:stop() end
end

local flush = jit and jit.flush or function () end  -- LuaJIT: see above
local runs = 1  -- per half
local function run ()
  for _ = 1, runs do chunk(unpack(args, 1, args.n)) end
end

-- Each half starts from a collected heap: otherwise one half pays for
-- the other's garbage, and the collector's cycle spans several halves.
local function plain ()
  collectgarbage()
  flush()
  local t0 = os.clock()
  run()
  return os.clock() - t0
end

local fixed = 0
local function profiled ()
  collectgarbage()
  flush()
  local t0 = os.clock()
  start()
  local t1 = os.clock()
  run()
  local t2 = os.clock()
  stop()
  fixed = fixed + (t1 - t0) + (os.clock() - t2)
  return t2 - t1
end

local function median (t)
  table.sort(t)
  local half = math.floor(#t / 2)
  return #t % 2 == 1 and t[half + 1] or (t[half] + t[half + 1]) / 2
end

-- warm up: the first run pays for page faults and cache misses (and on
-- LuaJIT for compiling); the second tells how long one run takes
run()
local t0 = os.clock()
run()
runs = math.max(1, math.floor(0.1 / (os.clock() - t0) + 0.5))
local ratios, base = {}, {}
for i = 1, pairs_n do
  local a, b
  if i % 2 == 1 then a = plain(); b = profiled()
  else b = profiled(); a = plain() end
  ratios[#ratios + 1] = b / a
  base[#base + 1] = a
end
local info = p and p:info() or { samples = 0, duration = 0 }
io.write(string.format("%.4f %.3f %.2f %d %.2f\n", median(ratios), median(base),
  fixed / pairs_n * 1e3, info.samples, info.samples / (info.duration > 0 and info.duration or 1)))
