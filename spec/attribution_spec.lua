-- Where the time goes: shares, C functions, blocked time, weights.
local h = require "spec.helper"

local seventy_thirty = h.script [[
local function spin (n)
  local x = 0
  for i = 1, n do x = x + (i % 7) * (i % 3) end
  return x
end
local function seven () local x = spin(7 * 400000) return x end
local function three () local x = spin(3 * 400000) return x end
local t0 = os.clock()
repeat seven() three() until os.clock() - t0 >= 1
]]

describe("attribution", function ()
  for _, clock in ipairs { "wall", "cpu" } do
    it("gives 70% and 30% to functions doing 7 and 3 parts of the work (" .. clock .. " clock)", function ()
      local r = h.sprof("--clock " .. clock .. " -i 0.001", seventy_thirty)
      assert.are.equal(0, r.status, r.err)
      local lines = h.text_lines(r.err)
      local seven, three = h.find_line(lines, "seven"), h.find_line(lines, "three")
      assert.is_truthy(seven, r.err)
      assert.is_truthy(three, r.err)
      assert.is_true(math.abs(seven.percent - 70) <= 5, r.err)
      assert.is_true(math.abs(three.percent - 30) <= 5, r.err)
      assert.matches("Clock: " .. clock, r.err)
    end)
  end

  it("attributes time in string.rep to string.rep under its Lua caller", function ()
    local script = h.script [[
local function build ()
  local n, t0 = 0, os.clock()
  repeat n = n + #(("abc"):rep(4000000)) until os.clock() - t0 >= 0.5
  return n
end
local function other () local x = 0 for i = 1, 1000 do x = x + i end return x end
build() other()
]]
    local r = h.sprof("-r collapsed -o -", script)
    assert.are.equal(0, r.status, r.err)
    local stacks = h.collapsed(r.out)
    local in_build = h.time_in(stacks, "build")
    local in_rep = h.time_in(stacks, "string.rep", "build")
    assert.is_true(in_build > 0, r.out)
    assert.is_true(in_rep / in_build >= 0.8, r.out)
  end)

  it("puts a Lua comparator under table.sort, under its caller", function ()
    local script = h.script [[
local function sorter ()
  local t, t0 = {}, os.clock()
  repeat
    for i = 1, 300000 do t[i] = (i * 7919) % 300000 end
    table.sort(t, function (a, b) return a > b end)
  until os.clock() - t0 >= 0.3
end
sorter()
]]
    local r = h.sprof("-r collapsed -o -", script)
    assert.are.equal(0, r.status, r.err)
    local stacks = h.collapsed(r.out)
    local in_sorter = h.time_in(stacks, "sorter")
    local in_sort = h.time_in(stacks, "table.sort", "sorter")
    local in_cmp = h.time_in(stacks, "(anonymous)", "table.sort")
    assert.is_true(in_sort / in_sorter >= 0.6, r.out)
    assert.is_true(in_cmp > 0, r.out)
  end)

  it("weighs blocked and busy time in C at its full size (wall clock)", function ()
    local script = h.script [[
local sleepy = require "sleepy"
local function nap () assert(sleepy.nanosleep(0.4)) end
local function wait_child () os.execute("sleep 0.3") end
local function burn () sleepy.spin(0.3) end
nap() wait_child() burn()
]]
    local r = h.sprof("-r collapsed -o -", script)
    assert.are.equal(0, r.status, r.err)
    local stacks, total = h.collapsed(r.out)
    local nap = h.time_in(stacks, "sleepy.nanosleep", "nap")
    local child = h.time_in(stacks, "os.execute", "wait_child")
    local burn = h.time_in(stacks, "sleepy.spin", "burn")
    assert.is_true(nap >= 380000 and nap <= 600000, r.out)
    assert.is_true(child >= 280000 and child <= 600000, r.out)
    assert.is_true(burn >= 280000 and burn <= 600000, r.out)
    assert.is_true(total >= 950000, r.out)
  end)

  -- Profiles a loop of 'work' (CPU seconds) and 'pause' (a sleep in a C
  -- function), 'rounds' times; returns their shares of the run and the
  -- report for a failure message.
  local function work_and_pause (work, pause, rounds)
    local script = h.script(([[
local sleepy = require "sleepy"
local clock = os.clock
local function work () local t = clock() repeat until clock() - t >= %g end
local function pause () assert(sleepy.nanosleep(%g)) end
for _ = 1, %d do work() pause() end
]]):format(work, pause, rounds))
    local r = h.sprof("-r collapsed -o -", script)
    assert.are.equal(0, r.status, r.err)
    local stacks, total = h.collapsed(r.out)
    local waited = h.time_in(stacks, "sleepy.nanosleep", "pause") / total
    local worked = h.time_in(stacks, "work") / total
    return worked, waited, ("work %.0f%%, pause %.0f%%\n%s"):format(worked * 100,
      waited * 100, r.out)
  end

  it("gives short waits between stretches of work to the C function that waited (wall clock)", function ()
    -- 20 ms of CPU, then a 5 ms sleep, for 1.5 s: a fifth of the run waits,
    -- in waits shorter than the sampler thread's longest sleep
    local worked, waited, report = work_and_pause(0.02, 0.005, 60)
    assert.is_true(waited >= 0.12 and waited <= 0.3, report)
    assert.is_true(worked >= 0.65, report)
  end)

  it("gives work shorter than the kernel's tick between waits to the code that did it (wall clock)", function ()
    -- 1 ms of CPU, then a 2 ms sleep, 400 times: a third of the run works
    -- in bursts that a 4 ms tick mostly misses (a server's requests)
    local worked, waited, report = work_and_pause(0.001, 0.002, 400)
    assert.is_true(worked >= 0.2 and worked <= 0.5, report)
    assert.is_true(waited >= 0.45, report)
  end)

  it("adds up to the whole run: sample weights sum to the duration", function ()
    local p = require("sprof").new()
    p:start()
    local clock = os.clock  -- (a global is looked up by busted's Lua code)
    local x, t0 = 0, clock()
    repeat
      for i = 1, 100000 do x = x + i % 3 end
    until clock() - t0 >= 0.1
    p:stop()
    local info = p:info()
    assert.is_true(info.samples > 10)
    assert.is_true(math.abs(info.sampled_time - info.duration) / info.duration < 0.05)
  end)
end)
