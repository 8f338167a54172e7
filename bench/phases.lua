-- What sprof itself costs in one run: creating the profiler, the run,
-- stopping (naming native frames), writing; the hook and signal handler.
--   LUA_CPATH="build/?.so;;" lua5.4 bench/phases.lua native   (or: lua)
local sprof = require "sprof"
local native = arg[1] == "native"
local c0 = os.clock()
local p = sprof.new { native = native }
local c1 = os.clock()
p:start()
local function fib (n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local c2 = os.clock()
fib(32)
local c3 = os.clock()
p:stop()
local c4 = os.clock()
p:write("/dev/null", "text")
local c5 = os.clock()
print(string.format("%s new %.1f ms  run %.1f ms  stop %.1f ms  write %.1f ms  signals %d hook %.1f ms handler %.1f ms",
  arg[1], (c1-c0)*1e3, (c3-c2)*1e3, (c4-c3)*1e3, (c5-c4)*1e3, p:info().signals, p:info().hook_time*1e3, p:info().handler_time*1e3))
