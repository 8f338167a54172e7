-- A script that allocates: rows parsed from numbers into strings, a report
-- built from some of them, and a cache that keeps a few batches of rows.
-- Profile its memory with:  sprof-lua --memory examples/alloc.lua
--              what it keeps:  sprof-lua --memory --memory-view live examples/alloc.lua

local function parse_line (i)
  local fields = {}
  for j = 1, 8 do fields[j] = tostring(i * j) end
  return fields
end

local function load_rows (n)
  local rows = {}
  for i = 1, n do
    rows[i] = table.concat(parse_line(i), ",")
  end
  return rows
end

local function summary (rows)
  local out = {}
  for i = 1, #rows, 10 do out[#out + 1] = string.rep(rows[i], 3) end
  return #table.concat(out, "\n")
end

cache = {}  -- a global: still there when the script ends and the profile stops
local function remember (rows)
  if #cache < 40 then cache[#cache + 1] = rows end
end

local t0 = os.clock()
while os.clock() - t0 < 1 do
  local rows = load_rows(2000)
  summary(rows)
  remember(rows)
end
print(#cache .. " batches cached")
