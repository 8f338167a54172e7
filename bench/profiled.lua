-- Runs a script under sprof in this same lua5.4 process, so the benchmark
-- compares one interpreter with itself (sprof-lua links liblua5.4.so,
-- which is not the same build as the lua5.4 binary).
--   lua5.4 bench/profiled.lua INTERVAL CLOCK NATIVE script.lua [args...]
-- NATIVE is "native" or "lua". With SPROF_BENCH_INFO set, prints on
-- stderr the cost of one signal (a tick of the CPU timer; with native
-- frames a capture every other tick) in microseconds, and
-- how many samples were taken per second of CPU time (while the thread
-- computes, one per kernel tick: about 250 with a 4 ms tick; LuaJIT
-- gives one when it reaches a safe point),
-- and the CPU time of the wall clock's sampler thread as a share of the
-- run's wall time (per cent of a CPU).
-- Runs on Lua 5.4, 5.3, 5.1 and LuaJIT, each with its own sprof.so.
local sprof = require "sprof"
local unpack = table.unpack or unpack  -- 5.1: a global
local interval, clock, native, script = tonumber(arg[1]), arg[2], arg[3], arg[4]
local args = { n = #arg - 4, unpack(arg, 5) }
local p = sprof.new { interval = interval, clock = clock, native = native == "native" }
arg = { [0] = script, unpack(args, 1, args.n) }
local chunk = assert(loadfile(script))
p:start()
chunk(unpack(args, 1, args.n))
p:stop()
p:write("/dev/null", "text")
if os.getenv("SPROF_BENCH_INFO") then
  local info = p:info()
  io.stderr:write(string.format("signals %d  us/signal %.2f  hook us/sample %.2f"
    .. "  samples/cpu-s %.0f  sampler%%cpu %.2f\n",
    info.signals, info.signals > 0 and info.handler_time / info.signals * 1e6 or 0,
    info.hook_time / info.samples * 1e6, info.samples / info.cpu_time,
    (info.sampler_time or 0) / info.duration * 100))
end
