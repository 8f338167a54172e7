-- A small program with a known shape: 'heavy' does 7 parts of the work and
-- 'light' 3, both with the same loop body, plus some string building and a
-- sort with a Lua comparator. Run it under the profiler:
--   sprof-lua examples/work.lua
local function spin (n)
  local x = 0
  for i = 1, n do x = x + (i % 7) * (i % 3) end
  return x
end

local function heavy (n) local x = spin(7 * n) return x end
local function light (n) local x = spin(3 * n) return x end

local function build_report (rows)
  local parts = {}
  for i = 1, rows do parts[#parts + 1] = string.format("row %d: %s", i, ("x"):rep(i % 50)) end
  return table.concat(parts, "\n")
end

local function sort_records (n)
  local t = {}
  for i = 1, n do t[i] = { key = (i * 7919) % n } end
  table.sort(t, function (a, b) return a.key < b.key end)
  return t
end

local scale = tonumber(arg and arg[1]) or 1
for _ = 1, 20 * scale do
  heavy(100000)
  light(100000)
end
build_report(50000 * scale)
sort_records(100000 * scale)
