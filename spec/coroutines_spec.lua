-- The running coroutine is the one sampled.
local h = require "spec.helper"

local time_along = h.time_along

-- A script whose function 'hot' runs inside coroutines; it prints the CPU
-- seconds 'hot' measured itself on stderr after the profile. Each call is
-- a short slice of work: the scripts call it until ENOUGH seconds of CPU
-- went into it, however fast the machine. The thread's own CPU clock, not
-- os.clock: that counts the profiler's sampler thread too, and on a busy
-- machine it ran ahead of the profiled thread's time by up to 20%.
local hot = [[
hot_seconds = 0
local ENOUGH = 0.3
local clock = require("sleepy").thread_clock
local function hot (n)
  local t0, x = clock(), 0
  for i = 1, n do x = x + i % 7 end
  hot_seconds = hot_seconds + clock() - t0
  return x
end
]]

-- Runs the script under sprof-lua, or in lua5.4 when it profiles itself.
local function check (script_body, path, opts, in_process)
  local script = h.script(hot .. script_body .. "\nio.stderr:write(string.format('HOT %.6f\\n', hot_seconds))\n")
  local r = in_process and h.run(h.lua .. " " .. h.quote(script))
            or h.sprof((opts or "") .. " -r collapsed -o -", script)
  assert.are.equal(0, r.status, r.err)
  local measured = tonumber(r.err:match("HOT (%S+)")) * 1e6
  local stacks = h.collapsed(r.out)
  local attributed = time_along(stacks, path)
  assert.is_true(measured > 2e5, "workload too small: " .. measured)
  assert.is_true(attributed >= 0.9 * measured,
                 string.format("%.0f of %.0f us along %s\n%s", attributed, measured,
                               table.concat(path, " > "), r.out))
  return stacks
end

describe("coroutines", function ()
  for _, clock in ipairs { "wall", "cpu" } do
    it("create/resume/yield: hot time under resume > the coroutine's function (" .. clock .. ")", function ()
      check([[
local function gen () while true do hot(100000) coroutine.yield() end end
local co = coroutine.create(gen)
while hot_seconds < ENOUGH do assert(coroutine.resume(co)) end
]], { "(main chunk)", "coroutine.resume", "gen", "hot" }, "--clock " .. clock)
    end)
  end

  it("coroutine.wrap", function ()
    check([[
local step = coroutine.wrap(function () while true do hot(100000) coroutine.yield() end end)
local function drive () while hot_seconds < ENOUGH do step() end end
drive()
]], { "drive", "step", "hot" })
  end)

  it("nested coroutines: a coroutine resuming another", function ()
    check([[
local function inner () while true do hot(100000) coroutine.yield() end end
local function outer ()
  local co = coroutine.create(inner)
  while true do assert(coroutine.resume(co)) coroutine.yield() end
end
local co = coroutine.create(outer)
while hot_seconds < ENOUGH do assert(coroutine.resume(co)) end
]], { "coroutine.resume", "outer", "coroutine.resume", "inner", "hot" })
  end)

  it("a coroutine created before start() and a resume saved in a local before require", function ()
    local stacks = check([[
local resume, create, yield = coroutine.resume, coroutine.create, coroutine.yield
local function gen () while true do hot(100000) yield() end end
local co = create(gen)
assert(resume(co))
coroutine.resume = nil  -- nothing of sprof may rely on the global
local sprof = require "sprof"
local p = sprof.new():start()
while hot_seconds < ENOUGH do assert(resume(co)) end
p:stop()
io.stdout:write(p:output("collapsed"))
]], { "gen", "hot" }, nil, true)
    assert.is_true(time_along(stacks, { "coroutine.resume", "gen", "hot" }) > 0)
  end)

  it("a C host that calls lua_resume itself and says so", function ()
    local host = h.lua_version == "5.4" and "host_resume" or "host_resume" .. h.lua_version
    local r = h.run(h.quote(h.build .. "/spec/" .. host))
    assert.are.equal(0, r.status, r.err)
    local measured = tonumber(r.err) * 1e6
    local attributed = time_along(h.collapsed(r.out), { "(anonymous)", "hot" })
    assert.is_true(measured > 2e5, "workload too small: " .. measured)
    assert.is_true(attributed >= 0.9 * measured, measured .. " us measured\n" .. r.out)
  end)

  it("survives coroutines that finish, fail, are closed or collected", function ()
    local script = h.script [[
local function work (n) local x = 0 for i = 1, n do x = x + i end return x end
-- at least 3000 rounds, and at least 0.2 s of CPU
local made, t0 = 0, os.clock()
repeat
  local co = coroutine.create(function (kind)
    work(2000)
    coroutine.yield()
    work(2000)
    if kind == 1 then error("failed on purpose") end
    return "done"
  end)
  made = made + 1
  local kind = made % 4
  assert(coroutine.resume(co, kind))
  if kind == 2 then assert((coroutine.close or coroutine.status)(co))  -- (5.4)
  elseif kind == 3 then co = nil
  else coroutine.resume(co) end
  if made % 100 == 0 then collectgarbage() end
  local w = coroutine.wrap(function () work(1000) coroutine.yield() end)
  w()
until made >= 3000 and os.clock() - t0 >= 0.2
print(made)
]]
    local r = h.sprof("-i 0.0002 -r collapsed -o -", script)
    assert.are.equal(0, r.status, r.err)
    local made, rest = r.out:match("^(%d+)\n(.*)$")
    assert.is_true(tonumber(made or 0) >= 3000, r.out)
    -- most of these coroutines live for less than a sample: their time is
    -- found at the resume's return and goes to their main function
    local stacks = h.collapsed(rest)
    assert.is_true(time_along(stacks, { "coroutine.resume", "(anonymous)" }) > 0, r.out)
  end)

  it("keeps the program's behaviour: errors from wrap, resume results", function ()
    local script = h.script [[
local co = coroutine.create(function (a) local b = coroutine.yield(a + 1) error("bad " .. b) end)
print(coroutine.resume(co, 1))
print(coroutine.resume(co, 5))
print(coroutine.status(co))
local w = coroutine.wrap(function () error("from wrap") end)
print(pcall(w))
local g = coroutine.wrap(function () error({}) end)
print(select("#", pcall(g)))
w = coroutine.wrap(function () local x = 0 for i = 1, 3e6 do x = x + i end error("late") end)
w()
]]
    local plain = h.run(h.lua .. " " .. h.quote(script))
    local profiled = h.sprof("-o /dev/null", script)
    assert.are.equal(plain.out, profiled.out)
    assert.are.equal(plain.status, profiled.status)
    assert.are.equal(plain.err:gsub("^" .. h.lua .. ": ", ""),
                     profiled.err:gsub("^" .. h.sprof_lua:gsub("%p", "%%%0") .. ": ", ""))
  end)
end)
