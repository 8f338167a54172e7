-- Time inside C functions: long string.rep, pattern matching, gsub.
-- pair: 3  (bench/paired.lua: the argument for a run of about 0.15 s)
local rounds = tonumber(arg[1]) or 20
local count = 0
for r = 1, rounds do
  local s = ("lorem ipsum dolor sit amet "):rep(40000)
  for w in s:gmatch("%a+") do count = count + 1 end
  count = count + select(2, s:gsub("o", "0"))
end
print(count)
