-- sprof.auto: profiles a whole lua5.4 run without touching the script,
-- through Lua's own start-up hook (lua5.4 links Lua statically, so
-- LD_PRELOAD cannot reach it):
--
--   LUA_INIT_5_4='require "sprof.auto"' SPROF_OUTPUT=profile.html lua5.4 app.lua
--
-- SPROF_FORMAT (text, html, json, collapsed, speedscope, pprof; else from
-- the file's extension), SPROF_INTERVAL and SPROF_CLOCK as for libsprof.
-- The report is written when the state closes (the script ends, also with
-- an error or on Ctrl-C) or at os.exit.
local sprof = require "sprof"

local output = os.getenv("SPROF_OUTPUT")
if not output or output == "" then
  io.stderr:write("sprof.auto: set SPROF_OUTPUT to the report's file name\n")
  return false
end

-- without SPROF_FORMAT, write() takes the format from the file's name
local format = os.getenv("SPROF_FORMAT")
if format == "" then format = nil end

local profiler = sprof.new {
  interval = tonumber(os.getenv("SPROF_INTERVAL")) or 0.001,
  clock = os.getenv("SPROF_CLOCK") or "wall",
}
profiler:set_program(arg and arg[0] or "lua")

local written = false
local function finish ()
  if written then return end
  written = true
  if profiler:running() then profiler:stop() end
  local ok, err = pcall(profiler.write, profiler, output, format)
  if not ok then io.stderr:write(tostring(err), "\n") end
end

-- a finalizer in the registry runs when lua5.4 closes the state
debug.getregistry()["sprof.auto"] = setmetatable({}, { __gc = finish })

local exit = os.exit
os.exit = function (code, close)  -- os.exit does not close the state by default
  finish()
  return exit(code, close)
end

profiler:start()
return true
