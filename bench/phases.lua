-- What sprof itself costs in one run: creating the profiler, the run,
-- stopping (naming native frames), writing; the hook and signal handler.
--   LUA_CPATH="build/?.so;;" lua5.4 bench/phases.lua native [script.lua]
-- (or: lua); without a script the run is fib(32).
local sprof = require "sprof"
local native = arg[1] == "native"
local work
if arg[2] then
  work = assert(loadfile(arg[2]))
  print = function () end  -- the workloads print their result
else
  local function fib (n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
  work = function () return fib(32) end
end
local c0 = os.clock()
local p = sprof.new { native = native }
local c1 = os.clock()
p:start()
local c2 = os.clock()
work()
local c3 = os.clock()
p:stop()
local c4 = os.clock()
p:write("/dev/null", "text")
local c5 = os.clock()
local info = p:info()
io.write(string.format("%s new %.1f ms  run %.1f ms  stop %.1f ms  write %.1f ms  "
  .. "signals %d  hook %.1f ms  handler %.1f ms\n",
  arg[1], (c1-c0)*1e3, (c3-c2)*1e3, (c4-c3)*1e3, (c5-c4)*1e3, info.signals,
  info.hook_time*1e3, info.handler_time*1e3))
