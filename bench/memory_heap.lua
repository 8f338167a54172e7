-- The profiler's own memory against the program's heap, for a long run:
-- a program keeps about MB megabytes in strings and tables and replaces
-- them for SECONDS seconds of CPU, plain or profiled ("time" or
-- "memory"). Prints the peak resident memory and the Lua heap's peak,
-- and for a profile the size of its session. Compare the peaks of
-- "memory" and "time": the difference is what memory profiling keeps
-- (its table of sampled blocks and the session's extra nodes).
--   lua5.4 bench/memory_heap.lua plain|time|memory SECONDS [MB]
local mode, seconds, mb = arg[1], tonumber(arg[2]) or 20, tonumber(arg[3]) or 100
local sprof = mode ~= "plain" and require "sprof"
local p = sprof and sprof.new { clock = "cpu", memory = mode == "memory" }

local function peak_rss_kb ()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end

local slots = mb * 2^20 // 600  -- a 500-byte string and its table
local keep, heap_peak = {}, 0
local function fill (i, n)
  keep[i] = { ("x"):rep(480) .. n, n }
end
local function churn (n)
  for _ = 1, 1000 do fill(math.random(slots), n) end
end
if p then p:start() end
for i = 1, slots do fill(i, i) end
local t0, n = os.clock(), 0
while os.clock() - t0 < seconds do
  n = n + 1
  churn(n)
  if n % 100 == 0 then heap_peak = math.max(heap_peak, collectgarbage("count")) end
end
if p then p:stop() end
local info = p and p:info()
io.write(string.format("%-6s peak RSS %7.1f MiB  Lua heap peak %6.1f MiB", mode,
  peak_rss_kb() / 1024, heap_peak / 1024))
if info then io.write(string.format("  nodes %d frames %d", info.nodes, info.frames)) end
if info and info.live_bytes then
  io.write(string.format("  live %.1f MiB", info.live_bytes / 2^20))
end
io.write("\n")
