-- Coroutine ping-pong: 8 million resume/yield pairs.
-- pair: 1500000  (bench/paired.lua: the argument for a run of about 0.15 s)
local n = tonumber(arg[1]) or 8000000
local co = coroutine.wrap(function ()
  local x = 0
  while true do x = x + coroutine.yield(x) end
end)
co(0)
local last
for i = 1, n do last = co(1) end
print(last)
