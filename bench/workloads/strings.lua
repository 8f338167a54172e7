-- String building: formatting, concatenation and table.concat.
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
