-- A steady workload for the memory check: the same mix of calls for
-- arg[1] seconds, then the process's peak resident memory.
--   build/sprof-lua -o /dev/null bench/steady.lua 10
local seconds = tonumber(arg[1]) or 10
local function leaf (i) return (i * 31) % 17 end
local function middle (i) local s = 0 for j = 1, 50 do s = s + leaf(i + j) end return s end
local function sorter (n)
  local t = {} for i = 1, n do t[i] = (i * 7919) % n end
  table.sort(t, function (a, b) return a < b end)
end
local deadline = os.time() + seconds
local x = 0
while os.time() < deadline do
  for i = 1, 2000 do x = x + middle(i) end
  sorter(2000)
  x = x + #(("ab"):rep(1000))
end
for line in io.lines("/proc/self/status") do
  local kb = line:match("^VmHWM:%s+(%d+)")
  if kb then io.stderr:write(string.format("peak RSS %d kB after %d s\n", kb, seconds)) end
end
