-- Runs a script under sprof in this same lua5.4 process, so the benchmark
-- compares one interpreter with itself (sprof-lua links liblua5.4.so,
-- which is not the same build as the lua5.4 binary).
--   lua5.4 bench/profiled.lua INTERVAL CLOCK script.lua [args...]
local sprof = require "sprof"
local interval, clock, script = tonumber(arg[1]), arg[2], arg[3]
local args = table.pack(table.unpack(arg, 4))
local p = sprof.new { interval = interval, clock = clock }
arg = { [0] = script, table.unpack(args, 1, args.n) }
local chunk = assert(loadfile(script))
p:start()
chunk(table.unpack(args, 1, args.n))
p:stop()
p:write("/dev/null", "text")
