-- An allocation loop: small tables and strings, most of them garbage at
-- once, some kept for a while (the collector's steady work).
-- pair: 25  (bench/paired.lua: the argument for a run of about 0.15 s)
local rounds = tonumber(arg[1]) or 150
local keep, sum = {}, 0
for r = 1, rounds do
  for i = 1, 10000 do
    local t = { i, r, name = "n" .. i }
    keep[i % 1000 + 1] = t
    sum = sum + #t.name
  end
end
print(sum)
