-- String building: formatting, concatenation and table.concat.
-- pair: 8  (bench/paired.lua: the argument for a run of about 0.15 s)
local rounds = tonumber(arg[1]) or 40
local total = 0
for r = 1, rounds do
  local parts = {}
  for i = 1, 20000 do
    parts[#parts + 1] = string.format("%d:%s", i, ("ab"):rep(i % 13)) .. ";"
  end
  total = total + #table.concat(parts)
end
print(total)
