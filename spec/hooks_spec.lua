-- A hook that was there before start() keeps working, and comes back.
local h = require "spec.helper"

describe("an existing debug hook", function ()
  it("gets every line event while profiling and is back after stop", function ()
    local script = h.script [[
local sprof = require "sprof"
local function work (n)
  local x = 0
  for i = 1, n do
    x = x + i % 3
  end
  return x
end
local function count_lines (n, profile)
  local lines = 0
  local function hook (event) lines = lines + 1 end
  debug.sethook(hook, "l")
  local p = profile and sprof.new():start()
  work(n)
  if p then p:stop() end
  local f, mask, count = debug.gethook()
  debug.sethook()
  assert(f == hook and mask == "l" and count == 0, "hook not restored")
  return lines, p
end
-- at least 300000 iterations, and enough for 0.05 s of CPU under the hook
local n, plain = 150000
repeat
  n = 2 * n
  local t0 = os.clock()
  plain = count_lines(n, false)
until os.clock() - t0 >= 0.05
local profiled, p = count_lines(n, true)
assert(p:info().samples > 5, "too few samples")
print(plain, profiled, p:info().samples)
]]
    local r = h.run(h.lua .. " " .. h.quote(script))
    assert.are.equal(0, r.status, r.err)
    local plain, profiled, samples = r.out:match("(%d+)%s+(%d+)%s+(%d+)")
    assert.is_truthy(plain, r.out)
    -- the profiled run has the lines of p:start() and p:stop() on top; on
    -- 5.3 each sample adds one more on the line it came at (5.3's
    -- lua_sethook makes the next instruction count as a new line)
    local extra = h.lua_version == "5.3" and tonumber(samples) or 0
    assert.is_true(tonumber(profiled) - tonumber(plain) <= 3 + extra, r.out)
    assert.is_true(tonumber(plain) > 600000, r.out)
  end)

  it("gets call events and count events too", function ()
    local script = h.script [[
local sprof = require "sprof"
local calls, counts = 0, 0
local function f (x) return x + 1 end
debug.sethook(function (e) if e == "call" then calls = calls + 1 else counts = counts + 1 end end, "c", 1000)
local p = sprof.new():start()
local x = 0
for i = 1, 200000 do x = f(x) end
p:stop()
debug.sethook()
print(calls, counts)
]]
    local r = h.run(h.lua .. " " .. h.quote(script))
    assert.are.equal(0, r.status, r.err)
    local calls, counts = r.out:match("(%d+)%s+(%d+)")
    assert.is_true(tonumber(calls) >= 200000, r.out)
    assert.is_true(tonumber(counts) > 500, r.out)
  end)

  it("set while profiling is honoured and left in place", function ()
    local script = h.script [[
local sprof = require "sprof"
local p = sprof.new():start()
local lines = 0
debug.sethook(function () lines = lines + 1 end, "l")
local x = 0
for i = 1, 300000 do
  x = x + i
end
p:stop()
local f = debug.gethook()
debug.sethook()
print(lines, f ~= nil)
]]
    local r = h.run(h.lua .. " " .. h.quote(script))
    assert.are.equal(0, r.status, r.err)
    local lines, kept = r.out:match("(%d+)%s+(%a+)")
    assert.is_true(tonumber(lines) >= 600000, r.out)
    assert.are.equal("true", kept)
  end)
end)
