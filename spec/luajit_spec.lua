-- LuaJIT: the same reports from LuaJIT's own profiler (CPU time, the VM's
-- state as a leaf), sprof-luajit, sprof.auto, and what LuaJIT refuses.
-- The programs run in `luajit` and BUILD/sprof-luajit; busted stays on 5.4.
local h = require "spec.helper"
local json = require "dkjson"
local q = h.quote

local SPROF_LUAJIT = h.build .. "/sprof-luajit"
-- the LuaJIT build of the module and the test modules (sleepy)
local ENV = { LUA_CPATH = h.build .. "/luajit/?.so;" .. h.build .. "/spec/luajit/?.so;;" }
-- the same programs on Lua 5.4, the reference
local ENV54 = { LUA_CPATH = h.build .. "/?.so;" .. h.build .. "/spec/?.so;;",
                LUA_CPATH_5_4 = h.build .. "/?.so;" .. h.build .. "/spec/?.so;;" }

local function exists (path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local missing
if not os.execute("command -v luajit >/dev/null 2>&1") then
  missing = "luajit is not installed: apt-get install luajit"
elseif not exists(SPROF_LUAJIT) then
  missing = "no " .. SPROF_LUAJIT .. ": install libluajit2-5.1-dev and build again"
end

---------------------------------------------------------------------------
-- Reading the JSON sessions.

-- Runs 'cmd' (sprof-luajit or sprof-lua, with options) on the script,
-- writing a JSON report; returns the run and the decoded session (nil
-- when no report was written).
local function profile (cmd, script, args, env)
  local out = h.tmpfile(".json")
  local r = h.run(string.format("%s -o %s %s %s", cmd, q(out), q(script), args or ""),
                  env or ENV)
  local text = h.read(out)
  return r, text and assert(json.decode(text), "not JSON: " .. text:sub(1, 200))
end

-- Share (0..1) of the session's time in stacks through a frame 'name'.
local function share (session, name)
  local t, total = h.session_time(session, name)
  return total > 0 and t / total or 0
end

-- The frames of a stack as the report shows them: without the
-- interpreter's own native frames and the host's, which it hides.
local function shown (session, stack)
  local list = {}
  for _, i in ipairs(stack.frames) do
    local f = session.frames[i + 1]
    if not f.internal and not f.host then list[#list + 1] = f end
  end
  return list
end

-- Time (s) of the stacks through the frames of 'path' in order, each
-- directly under the one before (as shown); an element of path is a name,
-- or a function(frame) that says whether the frame stands there.
local function time_along (session, path)
  local sum = 0
  local function fits (frame, want)
    if type(want) == "function" then return want(frame) end
    return frame.name == want
  end
  for _, s in ipairs(session.stacks) do
    local frames = shown(session, s)
    for start = 1, #frames - #path + 1 do
      local ok = true
      for k = 1, #path do
        if not fits(frames[start + k - 1], path[k]) then
          ok = false
          break
        end
      end
      if ok then sum = sum + s.weight_ns break end
    end
  end
  return sum / 1e9
end

-- The session as text, for failure messages: "a;b;c 0.123" per path
-- shown, in order.
local function dump (session)
  local times, lines = {}, {}
  for _, s in ipairs(session.stacks) do
    local names = {}
    for _, f in ipairs(shown(session, s)) do names[#names + 1] = f.name end
    local path = table.concat(names, ";")
    if not times[path] then lines[#lines + 1] = path end
    times[path] = (times[path] or 0) + s.weight_ns / 1e9
  end
  table.sort(lines)
  for i, path in ipairs(lines) do lines[i] = string.format("%s %.3f", path, times[path]) end
  return table.concat(lines, "\n")
end

local function is_c (frame) return frame.kind == "c" end

---------------------------------------------------------------------------
-- The programs.

-- spec/attribution_spec.lua's: 'seven' does 7 parts of the work, 'three' 3,
-- for 1 s of CPU.
local SEVENTY_THIRTY = [[
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

-- Three functions whose work is mostly in C, each called until it has
-- taken its share of 1 s of the thread's CPU: 25% sorting numbers, 50%
-- sorting with a Lua comparator, 25% building strings, on any VM.
local C_HEAVY = [[
local clock = require("sleepy").thread_clock
local N = 20000
local function fill (t) for i = 1, N do t[i] = (i * 7919) % N end return t end
local function sort_plain () table.sort(fill({})) end
local function sort_cmp ()
  table.sort(fill({}), function (a, b)
    return a > b
  end)
end
local function strings ()
  local s = ("abc"):rep(20000):gsub("b", "xy")
  local parts = {}
  for i = 1, 200 do parts[i] = s:sub(i, i + 50) end
  return table.concat(parts, ",")
end
local function busy (fn, budget)
  local t0 = clock()
  repeat fn() until clock() - t0 >= budget
end
busy(sort_plain, 0.25)
busy(sort_cmp, 0.5)
busy(strings, 0.25)
]]

-- spec/coroutines_spec.lua's: 'hot' runs inside coroutines in short
-- slices and adds up its own CPU time (printed on stderr at the end).
local HOT = [[
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
local HOT_END = "\nio.stderr:write(string.format('HOT %.6f\\n', hot_seconds))\n"

-- 'hot_spot' busy for 'secs' of CPU
local HOT_SPOT = h.HOT_SPOT

describe("LuaJIT", function ()
  if missing then return pending(missing) end

  describe("attribution", function ()
    it("gives 70% and 30% to 'seven' and 'three', most of it compiled (JIT on)", function ()
      local r, s = profile(q(SPROF_LUAJIT), h.script(SEVENTY_THIRTY))
      assert.are.equal(0, r.status, r.err)
      local seven, three = share(s, "seven"), share(s, "three")
      assert.is_true(math.abs(seven - 0.7) <= 0.05, dump(s))
      assert.is_true(math.abs(three - 0.3) <= 0.05, dump(s))
      assert.is_true(share(s, "[jit compiled]") > 0.5, dump(s))
      assert.are.equal("cpu", s.clock)
      assert.is_true(s.duration_ns >= 0.9e9 and s.cpu_ns >= 0.9e9)
      assert.is_false(h.has_frame(s, "[suspended]"))  -- started in the main thread
    end)

    it("gives 70% and 30% with the JIT off, interpreted", function ()
      local r, s = profile(q(SPROF_LUAJIT), h.script("jit.off()\n" .. SEVENTY_THIRTY))
      assert.are.equal(0, r.status, r.err)
      assert.is_true(math.abs(share(s, "seven") - 0.7) <= 0.05, dump(s))
      assert.is_true(math.abs(share(s, "three") - 0.3) <= 0.05, dump(s))
      assert.is_true(share(s, "[jit compiled]") < 0.01, dump(s))
    end)

    -- the 5.4 session of C_HEAVY, made once (CPU clock, as on LuaJIT)
    local reference
    local function reference_session ()
      if not reference then
        local r, s = profile(q(h.build .. "/sprof-lua") .. " --clock cpu --no-native",
                             h.script(C_HEAVY), nil, ENV54)
        assert.are.equal(0, r.status, r.err)
        reference = s
      end
      return reference
    end

    for _, case in ipairs {
      { jit = "on", opts = "" }, { jit = "off", opts = "" }, { jit = "on", opts = "--no-native" },
    } do
      it("attributes C-heavy functions as on Lua 5.4 (JIT " .. case.jit .. ") " .. case.opts, function ()
        local s54 = reference_session()
        local r, s = profile(q(SPROF_LUAJIT) .. " " .. case.opts,
                             h.script((case.jit == "off" and "jit.off()\n" or "") .. C_HEAVY))
        assert.are.equal(0, r.status, r.err)
        local report = dump(s) .. "\n-- on Lua 5.4:\n" .. dump(s54)
        for name, budget in pairs { sort_plain = 0.25, sort_cmp = 0.5, strings = 0.25 } do
          local lj, ref = share(s, name), share(s54, name)
          assert.is_true(math.abs(ref - budget) <= 0.05, name .. " on 5.4\n" .. report)
          assert.is_true(math.abs(lj - ref) <= 0.05,
                         string.format("%s: %.1f%% on LuaJIT, %.1f%% on 5.4\n%s",
                                       name, 100 * lj, 100 * ref, report))
        end
        -- table.sort calls the comparator: both are on the stack, by name
        assert.is_true(time_along(s, { "sort_cmp", "table.sort" })
                       >= 0.8 * time_along(s, { "sort_cmp" }), report)
        assert.is_true(time_along(s, { "sort_cmp", "table.sort", "(anonymous)" }) > 0, report)
        -- the C work of the others: under the C function's name, or as C
        -- code (a C function that had returned by LuaJIT's callback)
        for name, cfun in pairs { sort_plain = "table.sort", strings = "string.gsub" } do
          assert.is_true(time_along(s, { name, cfun }) + time_along(s, { name, "[C code]" })
                         >= 0.6 * time_along(s, { name }), report)
        end
      end)
    end
  end)

  describe("coroutines", function ()
    -- Runs a script with HOT under sprof-luajit: the time along 'path'
    -- is at least 90% of what 'hot' measured itself.
    local function check (body, path, jit)
      local script = h.script((jit == "off" and "jit.off()\n" or "") .. HOT .. body .. HOT_END)
      local r, s = profile(q(SPROF_LUAJIT), script)
      assert.are.equal(0, r.status, r.err)
      local measured = tonumber(r.err:match("HOT (%S+)"))
      assert.is_true(measured > 0.2, "workload too small: " .. measured)
      local attributed = time_along(s, path)
      assert.is_true(attributed >= 0.9 * measured,
                     string.format("%.3f of %.3f s along the path\n%s", attributed, measured, dump(s)))
      return s
    end

    local GEN = [[
local function gen () while true do hot(100000) coroutine.yield() end end
local co = coroutine.create(gen)
while hot_seconds < ENOUGH do assert(coroutine.resume(co)) end
]]

    for _, jit in ipairs { "on", "off" } do
      it("create/resume/yield: the coroutine's functions under the resume (JIT " .. jit .. ")", function ()
        check(GEN, { "(main chunk)", is_c, "gen", "hot" }, jit)
      end)
    end

    it("coroutine.wrap: the coroutine under the wrapped function's call", function ()
      check([[
local step = coroutine.wrap(function () while true do hot(100000) coroutine.yield() end end)
local function drive () while hot_seconds < ENOUGH do step() end end
drive()
]], { "drive", is_c, "(anonymous)", "hot" })
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
]], { is_c, "outer", is_c, "inner", "hot" })
    end)

    it("names coroutine.resume as Lua 5.4 does", function ()
      local s = check(GEN, { "(main chunk)", is_c, "gen", "hot" }, "off")
      local _, s54 = profile(q(h.build .. "/sprof-lua"), h.script(HOT .. GEN .. HOT_END), nil, ENV54)
      assert.is_true(time_along(s54, { "coroutine.resume", "gen" }) > 0, dump(s54))
      assert.is_true(time_along(s, { "coroutine.resume", "gen" }) > 0, dump(s))
    end)

    it("adds a profile's waits as [suspended] when it started in a coroutine", function ()
      -- the coroutine's run measures its own wall and CPU time: the time
      -- it was off the CPU is the wait, and on a busy machine some more
      local script = h.script(HOT_SPOT .. [[
local sleepy, sprof, ffi = require "sleepy", require "sprof", require "ffi"
ffi.cdef "typedef struct { long sec, nsec; } ts; int clock_gettime (int, ts *);"
local function wall ()
  local t = ffi.new("ts")
  ffi.C.clock_gettime(1, t)  -- CLOCK_MONOTONIC
  return tonumber(t.sec) + tonumber(t.nsec) * 1e-9
end
local co = coroutine.create(function ()
  local w0, c0 = wall(), sleepy.thread_clock()
  local p = sprof.new():start()
  hot_spot(0.05)
  coroutine.yield()
  hot_spot(0.05)
  p:stop()
  return p, wall() - w0, sleepy.thread_clock() - c0
end)
assert(coroutine.resume(co))
assert(sleepy.nanosleep(0.4))  -- the profiled coroutine waits
local _, p, w, c = assert(coroutine.resume(co))
p:write(arg[1], "json")
print(w - c)
]])
      local out = h.tmpfile(".json")
      local r = h.run("luajit " .. q(script) .. " " .. q(out), ENV)
      assert.are.equal(0, r.status, r.err)
      local off_cpu = tonumber(r.out)
      local s = assert(json.decode(h.read(out)))
      local waited = time_along(s, { "[suspended]" })
      local report = string.format("%.3f s off the CPU\n%s", off_cpu, dump(s))
      assert.is_true(waited >= 0.38, report)
      assert.is_true(math.abs(waited - off_cpu) <= 0.05, report)
      -- at the root, not under the coroutine's frames
      assert.are.equal(0, time_along(s, { "(anonymous)", "[suspended]" }), report)
      assert.is_true(time_along(s, { "(anonymous)", "hot_spot" }) >= 0.09, report)
    end)
  end)

  describe("sprof-luajit", function ()
    local ARGS = HOT_SPOT .. [[
hot_spot(0.1)
print(#arg, arg[0] ~= nil, arg[1], arg[2], ...)
if arg[1] == "exit" then os.exit(3) end
if arg[1] == "error" then error("boom") end
]]

    -- the run under luajit and under sprof-luajit: both, and the session
    local function both (args)
      local script = h.script(ARGS)
      local plain = h.run("luajit " .. q(script) .. " " .. args, ENV)
      local r, s = profile(q(SPROF_LUAJIT), script, args)
      return plain, r, s
    end

    for _, case in ipairs {
      { args = "a b", status = 0 },
      { args = "exit", status = 3 },
      { args = "error", status = 1 },
    } do
      it("runs a script as luajit does and writes the report: " .. case.args, function ()
        local plain, r, s = both(case.args)
        assert.are.equal(case.status, plain.status)
        assert.are.equal(plain.status, r.status)
        assert.are.equal(plain.out, r.out)
        -- the same message, the program's name aside (and the address of
        -- the host's C entry in a traceback)
        local function same (err)
          return (err:gsub("^[^\n:]*: ", ""):gsub("0x%x+", "0x?"))
        end
        assert.are.equal(same(plain.err), same(r.err))
        assert.is_truthy(s, "no report")
        assert.is_true(time_along(s, { "hot_spot" }) >= 0.08, dump(s))
      end)
    end

    it("-v prints LuaJIT's banner", function ()
      local plain = h.run("luajit -v")
      local r = h.run(q(SPROF_LUAJIT) .. " -v -o " .. q(h.tmpfile(".txt")))
      assert.are.equal(0, r.status, r.err)
      assert.matches("^LuaJIT ", plain.out)
      assert.are.equal(plain.out, r.out)
    end)

    it("-e and -l run before the script, as in luajit", function ()
      local dir = h.tmpfile("-mods")
      assert(os.execute("mkdir -p " .. q(dir)))
      h.write(dir .. "/ljmod.lua", "print('ljmod loaded', x) return {}\n")
      local script = h.script("print('script', x, package.loaded.ljmod ~= nil)\n")
      local env = { LUA_CPATH = ENV.LUA_CPATH, LUA_PATH = dir .. "/?.lua;;" }
      local opts = "-e 'x = 42' -l ljmod " .. q(script)
      local plain = h.run("luajit " .. opts, env)
      local r = h.run(q(SPROF_LUAJIT) .. " -o " .. q(h.tmpfile(".txt")) .. " " .. opts, env)
      assert.are.equal(0, plain.status, plain.err)
      assert.are.equal("ljmod loaded\t42\nscript\t42\ttrue\n", plain.out)
      assert.are.equal(plain.out, r.out)
      assert.are.equal(0, r.status, r.err)
    end)
  end)

  describe("bad input", function ()
    -- runs Lua code in luajit with the LuaJIT build of sprof; its output
    local function luajit (code, env)
      local r = h.run("luajit " .. q(h.script(code)), env or ENV)
      assert.are.equal(0, r.status, r.err)
      return r.out
    end

    it("a second profiler in the process: one line, the first keeps on", function ()
      local out = luajit(HOT_SPOT .. [[
local sprof = require "sprof"
local first = sprof.new():start()
local second = sprof.new()
print(select(2, pcall(second.start, second)))
hot_spot(0.3)
first:stop()
io.write(first:output("collapsed"))
]])
      local line, rest = out:match("^([^\n]*)\n(.*)$")
      assert.are.equal("sprof: LuaJIT runs one profiler at a time in a process (its "
        .. "profiler is process-wide): stop the other one first", line)
      local stacks, total = h.collapsed(rest)
      assert.is_true(h.time_in(stacks, "hot_spot") >= 0.9 * total, rest)
      assert.is_true(total >= 0.27e6, rest)
    end)

    it("an interval under 1 ms, memory profiling: one line each", function ()
      local out = luajit [[
local sprof = require "sprof"
print(select(2, pcall(sprof.new, { interval = 0.0005 })))
print(select(2, pcall(sprof.new, { memory = true })))
print(sprof.new({ interval = 0.0024 }):info().interval)
]]
      assert.are.equal("sprof: on LuaJIT the interval is at least 0.001 s (LuaJIT's "
        .. "profiler ticks in whole milliseconds)\n"
        .. "sprof: memory profiling is not available on LuaJIT\n"
        .. "0.002\n", out)
      local script = h.script("print('ran')")
      for _, opt in ipairs { "-i 0.0005", "--memory" } do
        local r = h.run(q(SPROF_LUAJIT) .. " " .. opt .. " " .. q(script), ENV)
        assert.are.equal(2, r.status)
        assert.are.equal("", r.out)
        assert.matches("^[^\n]*: [^\n]+\n$", r.err)
        assert.matches("LuaJIT", r.err)
      end
    end)

    for _, lua in ipairs { "lua5.1", "lua5.4" } do
      it("the LuaJIT build required by " .. lua .. ": one line, no crash", function ()
        if not os.execute("command -v " .. lua .. " >/dev/null 2>&1") then
          return pending(lua .. " is not installed")
        end
        local env = { LUA_CPATH = h.build .. "/luajit/?.so;;",
                      LUA_CPATH_5_4 = h.build .. "/luajit/?.so;;" }
        local message = "sprof: this sprof.so is built for LuaJIT, and this program runs Lua "
          .. lua:sub(4) .. ": require the sprof built for Lua " .. lua:sub(4)
        local caught = h.run(lua .. " " .. q(h.script("print(select(2, pcall(require, 'sprof')))")), env)
        assert.are.equal(0, caught.status, caught.err)
        assert.are.equal(message .. "\n", caught.out)
        local r = h.run(lua .. " " .. q(h.script("require 'sprof' print('not reached')")), env)
        assert.are.equal(1, r.status)
        assert.are.equal("", r.out)
        assert.are.equal(lua .. ": " .. message, r.err:match("^[^\n]*"))
      end)
    end

    it("lua5.1/sprof.so required by luajit opens the LuaJIT build and profiles", function ()
      local out = luajit(HOT_SPOT .. [[
local sprof = require "sprof"
local p = sprof.new():start()
hot_spot(0.2)
p:stop()
io.write(p:output("collapsed"))
]], { LUA_CPATH = h.build .. "/lua5.1/?.so;;" })
      local stacks, total = h.collapsed(out)
      assert.is_true(h.time_in(stacks, "hot_spot") >= 0.9 * total, out)
      assert.is_truthy(out:find(";[jit compiled] ", 1, true), out)  -- LuaJIT's leaf
    end)

    it("lua5.1/sprof.so without the LuaJIT build beside it: one line", function ()
      local dir = h.tmpfile("-only51")
      assert(os.execute("mkdir -p " .. q(dir) .. " && cp " .. q(h.build .. "/lua5.1/sprof.so")
                        .. " " .. q(dir)))
      local out = luajit("print(select(2, pcall(require, 'sprof')))",
                         { LUA_CPATH = dir .. "/?.so;;" })
      assert.are.equal("sprof: this sprof.so is built for Lua 5.1, and this program runs "
        .. "LuaJIT; the LuaJIT build is not beside it: build sprof with "
        .. "libluajit2-5.1-dev installed\n", out)
    end)
  end)

  it("sprof.auto through LUA_INIT writes the report; the program runs unchanged", function ()
    local script = h.script(HOT_SPOT .. [[
hot_spot(0.2)
print("done", ...)
io.stderr:write("to stderr\n")
os.exit(5)
]])
    local out = h.tmpfile(".json")
    local plain = h.run("luajit " .. q(script) .. " a b", ENV)
    local r = h.run("luajit " .. q(script) .. " a b", {
      LUA_CPATH = ENV.LUA_CPATH, LUA_PATH = h.root .. "/runtime/?.lua;;",
      LUA_INIT = "require 'sprof.auto'", SPROF_OUTPUT = out })
    assert.are.equal(5, plain.status)
    assert.are.equal(plain.status, r.status)
    assert.are.equal(plain.out, r.out)
    assert.are.equal(plain.err, r.err)
    local text = h.read(out)
    assert.is_truthy(text, "no report")
    local s = assert(json.decode(text))
    assert.are.equal("cpu", s.clock)
    assert.is_true(time_along(s, { "hot_spot" }) >= 0.18, dump(s))
  end)
end)
