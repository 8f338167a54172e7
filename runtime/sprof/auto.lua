-- sprof.auto: profiles a whole lua5.4 run without touching the script,
-- through Lua's own start-up hook (lua5.4 links Lua statically, so
-- LD_PRELOAD cannot reach it):
--
--   LUA_INIT_5_4='require "sprof.auto"' SPROF_OUTPUT=profile.html lua5.4 app.lua
--
-- and the same with LUA_INIT_5_3 and lua5.3, or LUA_INIT and lua5.1.
--
-- SPROF_FORMAT (text, html, json, collapsed, speedscope, pprof; else from
-- the file's extension), SPROF_INTERVAL, SPROF_CLOCK, SPROF_MEMORY=1 and
-- SPROF_MEMORY_RATE=BYTES (which implies SPROF_MEMORY) as for libsprof.
-- The report is written when the state closes (the script ends, also with
-- an error or on Ctrl-C) or at os.exit.
--
-- With SPROF_SIGNAL and/or SPROF_PERIOD (SPROF_KEEP, SPROF_SERVICE) the
-- profiler is handed to sprof's controller with p:control{} instead: the
-- script is profiled between two signals, or in periods, and the
-- controller writes the reports (SPROF_OUTPUT may then hold %p, %t, %n).
local sprof = require "sprof"

local output = os.getenv("SPROF_OUTPUT")
if output == "" then output = nil end
local function env (name)
  local value = os.getenv(name)
  if value ~= "" then return value end
end
local controlled = env("SPROF_SIGNAL") or env("SPROF_PERIOD")

if not output and not controlled then
  io.stderr:write("sprof.auto: set SPROF_OUTPUT to the report's file name\n")
  return false
end

-- without SPROF_FORMAT, write() takes the format from the file's name
local format = os.getenv("SPROF_FORMAT")
if format == "" then format = nil end

-- memory: whether to profile it, and the rate; a bad value is told on
-- stderr, and then only time is profiled
local function memory_options ()
  local on, rate = os.getenv("SPROF_MEMORY"), os.getenv("SPROF_MEMORY_RATE")
  local function bad (message)
    io.stderr:write("sprof.auto: ", message, "; memory is not profiled\n")
    return false
  end
  if on == "0" then return false end
  if on and on ~= "" and on ~= "1" then
    return bad("SPROF_MEMORY must be 1 or 0, not '" .. on .. "'")
  end
  if rate and rate ~= "" then
    local bytes = tonumber(rate)
    if not bytes or not (bytes > 0) or bytes > 1e12 then
      return bad("SPROF_MEMORY_RATE must be a number of bytes above 0 "
                 .. "(e.g. 524288), not '" .. rate .. "'")
    end
    return true, bytes
  end
  return on == "1"
end

local memory, memory_rate = memory_options()
if controlled and memory then
  io.stderr:write("sprof.auto: SPROF_MEMORY does not work with SPROF_SIGNAL ",
                  "or SPROF_PERIOD; only time is profiled\n")
  memory, memory_rate = false, nil
end
local profiler = sprof.new {
  interval = tonumber(os.getenv("SPROF_INTERVAL")) or 0.001,
  clock = os.getenv("SPROF_CLOCK") or "wall",
  memory = memory,
  memory_rate = memory_rate,
}
profiler:set_program(arg and arg[0] or "lua")

local written = false
local function finish ()
  if written then return end
  written = true
  if profiler:running() then profiler:stop() end
  if controlled then return end  -- the controller writes the last report
  local ok, err = pcall(profiler.write, profiler, output, format)
  if not ok then io.stderr:write(tostring(err), "\n") end
end

if controlled then
  local ok, err = pcall(profiler.control, profiler, {
    signal = env("SPROF_SIGNAL"), period = env("SPROF_PERIOD"),
    keep = env("SPROF_KEEP"), output = output, format = format,
    service = env("SPROF_SERVICE"),
  })
  if not ok then
    io.stderr:write((tostring(err):gsub("^sprof:", "sprof.auto:")),
                    "; the program runs unprofiled\n")
    return false
  end
end

-- a finalizer in the registry runs when Lua closes the state (5.1 runs
-- the finalizers of userdata only: newproxy makes one there)
local guard
if newproxy then
  guard = newproxy(true)
  getmetatable(guard).__gc = finish
else
  guard = setmetatable({}, { __gc = finish })
end
debug.getregistry()["sprof.auto"] = guard

local exit = os.exit
os.exit = function (code, close)  -- os.exit does not close the state by default
  finish()
  return exit(code, close)
end

if not controlled then profiler:start() end
return true
