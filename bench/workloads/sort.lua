-- table.sort with a Lua comparator: C calling back into Lua.
-- pair: 60000  (bench/paired.lua: the argument for a run of about 0.15 s)
local n = tonumber(arg[1]) or 300000
local rounds = 1
local sum = 0
for r = 1, rounds do
  local t = {}
  for i = 1, n do t[i] = { key = (i * 7919 + r) % n } end
  table.sort(t, function (a, b) return a.key < b.key end)
  sum = sum + t[1].key
end
print(sum)
