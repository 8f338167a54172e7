-- Continuous profiling (SPROF_PERIOD): a profile per period as a new
-- pprof file, read back with `go tool pprof`; lua5.4 with sprof.auto and a
-- C host with LD_PRELOAD=libsprof.so. Workloads are sized by CPU time.
local h = require "spec.helper"

local LUA_PATH = h.root .. "/runtime/?.lua;;"

local function auto_env (env)
  env.LUA_INIT_5_4 = 'require "sprof.auto"'
  env.LUA_PATH = LUA_PATH
  return env
end

local function new_dir ()
  local dir = h.tmpfile(".d")
  assert(os.execute("mkdir " .. h.quote(dir)))
  return dir
end

-- The files in dir whose names match a Lua pattern, sorted by the number
-- in them.
local function files (dir, pattern)
  local list = {}
  local p = io.popen("ls " .. h.quote(dir))
  for name in p:lines() do
    if name:match(pattern) then list[#list + 1] = name end
  end
  p:close()
  table.sort(list, function (a, b)
    return tonumber(a:match("(%d+)%.pb")) < tonumber(b:match("(%d+)%.pb"))
  end)
  return list
end

-- Seconds in a Go duration as pprof prints it ("250ms", "1.50s", "900us").
local function seconds (text)
  local n, unit = text:match("^([%d%.]+)(%a+)$")
  local scale = { s = 1, ms = 1e-3, us = 1e-6, ["µs"] = 1e-6, ns = 1e-9 }
  assert(n and scale[unit], "not a duration: " .. tostring(text))
  return tonumber(n) * scale[unit]
end

-- go tool pprof -top of some files: the duration and the total weight,
-- in seconds.
local function top (paths)
  local quoted = {}
  for i, p in ipairs(paths) do quoted[i] = h.quote(p) end
  local r = h.go_pprof("-top " .. table.concat(quoted, " "))
  assert.are.equal(0, r.status, r.err)
  local duration, total = r.out:match("Duration: (%S+), Total samples = (%S+)")
  assert.is_truthy(duration, r.out)
  return seconds(duration), seconds(total), r.out
end

local BUSY = [[
local function periodic_hot (n) local x = 0 for i = 1, n do x = x + i %% 7 end return x end
local t0 = os.clock()
repeat periodic_hot(10000) until os.clock() - t0 >= %s
print("done")
]]

describe("SPROF_PERIOD with sprof.auto in lua5.4", function ()
  local dir, list, pid
  local durations = {}  -- of each file, in seconds
  local PERIOD = 0.25

  setup(function ()
    dir = new_dir()
    local script = h.script(BUSY:format("1.5"))
    local r = h.run("echo $$ >" .. h.quote(dir .. "/pid") .. "; exec lua5.4 " .. h.quote(script),
      auto_env { SPROF_PERIOD = tostring(PERIOD), SPROF_SERVICE = "checkout",
                 SPROF_OUTPUT = dir .. "/cpu-%n.pb.gz" })
    assert.are.equal(0, r.status, r.err)
    assert.are.equal("done\n", r.out)
    assert.are.equal("", r.err)
    pid = h.read(dir .. "/pid"):match("%d+")
    list = files(dir, "^cpu%-%d+%.pb%.gz$")
  end)

  it("writes a file per period, each weighing its period", function ()
    -- 1.5 s of CPU (longer on a busy machine) in periods of 0.25 s, the
    -- last cut short by the exit
    assert.is_true(#list >= 5, #list .. " files")
    local run = 0
    for i, name in ipairs(list) do
      local duration, total, out = top { dir .. "/" .. name }
      durations[i] = duration
      run = run + duration
      assert.matches("periodic_hot", out)
      -- weights add up to the period's own length (a period runs long
      -- when the controller is late on a loaded machine; the next one is
      -- then short, as the deadlines stay on the period's grid)
      assert.is_true(math.abs(total - duration) <= 0.1 * duration + 0.005,
                     ("%s: %.3f s of weights in %.3f s"):format(name, total, duration))
    end
    -- never more than one file per period of the run; on a loaded machine
    -- a late controller may merge periods, but not most of them
    assert.is_true(#list <= run / PERIOD + 1 and #list >= 0.5 * run / PERIOD,
                   ("%d files for %.3f s"):format(#list, run))
  end)

  it("carries each period's start, the labels and the comments", function ()
    local starts = {}
    for i, name in ipairs(list) do
      local r = h.go_pprof("-raw " .. h.quote(dir .. "/" .. name))
      assert.are.equal(0, r.status, r.err)
      assert.matches("service:%[checkout%]", r.out)
      assert.matches("pid:%[" .. pid .. "%]", r.out)
      assert.matches("host:%[[^%]]+%]", r.out)
      local hh, mm, ss = r.out:match("Time: %d+%-%d+%-%d+ (%d+):(%d+):([%d%.]+)")
      assert.is_truthy(hh, r.out)
      starts[i] = hh * 3600 + mm * 60 + tonumber(ss)
      if i > 1 then  -- one period after the other: each starts as the last ends
        local gap = starts[i] - starts[i - 1]
        assert.is_true(gap > 0, "periods start " .. gap .. " s apart")
        if durations[i - 1] then
          assert.is_true(math.abs(gap - durations[i - 1]) <= 0.02 + 0.1 * durations[i - 1],
                         ("period %d starts %.3f s after one of %.3f s"):format(i, gap, durations[i - 1]))
        end
      end
    end
    local r = h.go_pprof("-comments " .. h.quote(dir .. "/" .. list[1]))
    assert.matches("service=checkout", r.out)
    assert.matches("pid=" .. pid, r.out)
  end)

  it("are merged by go tool pprof", function ()
    local paths, sum = {}, 0
    for i = 1, 3 do
      paths[i] = dir .. "/" .. list[i]
      local _, total = top { paths[i] }
      sum = sum + total
    end
    local duration, total, out = top(paths)
    assert.matches("periodic_hot", out)
    assert.is_true(math.abs(total - sum) < 0.01, ("merged %.3f s, files %.3f s"):format(total, sum))
    assert.is_true(duration > 0.6 * 3 * PERIOD, "merged duration " .. duration)
  end)
end)

describe("SPROF_PERIOD", function ()
  it("is set from Lua with p:control{}, which keeps the session to itself", function ()
    local dir = new_dir()
    local script = h.script(([[
local sprof = require "sprof"
local p = sprof.new()
print(select(2, pcall(p.control, p, {})))
print(select(2, pcall(p.control, p, { period = "soon" })))
p:control{ period = 0.1, keep = 0, output = %q, service = "lua-api" }
print(select(2, pcall(p.write, p, %q)))
local function lua_api_hot (n) local x = 0 for i = 1, n do x = x + i %% 7 end return x end
-- this thread's own CPU time: os.clock counts the sampler's and the
-- controller's too (under ASan a good part of it)
local clock = require("sleepy").thread_clock
local t0 = clock()
repeat lua_api_hot(10000) until clock() - t0 >= 0.35
p:stop()
print(p:running())
]]):format(dir .. "/api-%n.pb.gz", dir .. "/refused.txt"))
    local r = h.run("lua5.4 " .. h.quote(script), {})
    assert.are.equal(0, r.status, r.err)
    local lines = {}
    for line in r.out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal("sprof: control{} needs a signal or a period", lines[1])
    assert.matches("^sprof: SPROF_PERIOD must be a positive number", lines[2])
    assert.matches("^sprof: this profiler is handed to control{}", lines[3])
    assert.are.equal("false", lines[4])
    assert.is_nil(h.read(dir .. "/refused.txt"))
    local list = files(dir, "^api%-%d+%.pb%.gz$")
    assert.is_true(#list >= 3, #list .. " files")
    local paths = {}
    for i, name in ipairs(list) do paths[i] = dir .. "/" .. name end
    local _, total, out = top(paths)
    assert.matches("lua_api_hot", out)
    assert.matches("lua%-api", out)  -- the service label, in the comments
    assert.is_true(total > 0.3, total .. " s")
  end)

  it("keeps SPROF_KEEP files, the newest", function ()
    local dir = new_dir()
    local r = h.run("lua5.4 " .. h.quote(h.script(BUSY:format("0.8"))),
      auto_env { SPROF_PERIOD = "0.1", SPROF_KEEP = "3", SPROF_OUTPUT = dir .. "/k-%n.pb.gz" })
    assert.are.equal(0, r.status, r.err)
    local list = files(dir, "^k%-%d+%.pb%.gz$")
    assert.are.equal(3, #list, table.concat(list, " "))
    -- the numbers go on: the first ones were written and removed
    assert.is_true(tonumber(list[1]:match("%d+")) >= 4, list[1])
    assert.are.same({}, files(dir, "%.tmp$"))
  end)

  it("covers every state of a C host through LD_PRELOAD, closed ones too", function ()
    -- plain_host runs the script in one state, then in a second one it
    -- closes, and exits with the first still open
    local dir = new_dir()
    local script = h.script [[
local function host_state_hot (n) local x = 0 for i = 1, n do x = x + i % 7 end return x end
local clock = require("sleepy").thread_clock  -- not the sampler's time
local t0 = clock()
repeat host_state_hot(10000) until clock() - t0 >= 0.6
]]
    local preload = os.getenv("LD_PRELOAD")
    local started = os.time()
    local r = h.run(h.quote(h.build .. "/spec/plain_host") .. " " .. h.quote(script),
      { LD_PRELOAD = (preload and preload .. " " or "") .. h.build .. "/libsprof.so",
        SPROF_PERIOD = "0.2", SPROF_OUTPUT = dir .. "/host-%n.pb.gz" })
    assert.are.equal(0, r.status, r.err)
    assert.are.equal("", r.err)
    local list = files(dir, "^host%-%d+%.pb%.gz$")
    assert.is_true(#list >= 4, #list .. " files")
    local paths = {}
    for i, name in ipairs(list) do paths[i] = dir .. "/" .. name end
    local duration, total, out = top(paths)
    assert.matches("host_state_hot", out)
    -- nothing lost: the first state lived through both runs (1.2 s of
    -- CPU), the second through one (0.6 s); each state weighs its life
    assert.is_true(total > 1.6 and total < 2.5 + (os.time() - started),
                   ("%.3f s of weights over %.3f s"):format(total, duration))
  end)

  it("stays within one period's stacks over 200 short periods", function ()
    -- 64 functions called 6 deep, chosen by a counter: thousands of
    -- distinct stacks in the run, a few in each period
    local code = [[
local src = {}
for i = 1, 64 do
  src[i] = ("local function f%d (d, k) if d == 0 then local x = 0 for i = 1, 300 do x = x + i end return x end "
    .. "local r = F[k %% 64 + 1](d - 1, k // 64) return r end F[%d] = f%d"):format(i, i, i)
end
F = {}
load(table.concat(src, "\n"), "=fns")()
local rss = require("sleepy").heap_kb  -- (the C heap in use, KB)
-- with WANT files of periods in DIR: on until they are written (a late
-- controller on a loaded machine writes fewer than 100 a second)
local dir, want = os.getenv("DIR"), tonumber(os.getenv("WANT") or "0")
local function written ()
  local p, n = io.popen("ls " .. dir), 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end
local t0, k, early, early_t, late, next_look = os.clock(), 0, nil, nil, nil, 1
repeat
  k = k + 7919
  F[k % 64 + 1](5, k // 64)
  local t = os.clock() - t0
  -- settled: 1 s in, and (in periods) the controller has written a few
  -- files, its own memory made (late on a loaded machine)
  if not early and t >= next_look then
    next_look = t + 0.2
    if want == 0 or written() >= 10 then early, early_t = rss(), t end
  end
  if early and not late and t >= early_t + 2 then late = rss() end  -- grown in 2 s
  local done = late ~= nil
  if done and want > 0 and t < 60 then
    done = t >= next_look and written() >= want
    if t >= next_look then next_look = t + 0.2 end
  end
  if not early and t >= 60 then early, early_t = rss(), t end  -- give up
until done
print(math.floor(late - early + 0.5))
]]
    local script = h.script(code)
    local dir = new_dir()
    local r = h.run("lua5.4 " .. h.quote(script),
      auto_env { SPROF_PERIOD = "0.01", SPROF_KEEP = "0", SPROF_OUTPUT = dir .. "/s-%n.pb.gz",
                 DIR = dir, WANT = "201" })
    assert.are.equal(0, r.status, r.err)
    local periodic_growth = tonumber(r.out)
    local list = files(dir, "^s%-%d+%.pb%.gz$")
    assert.is_true(#list >= 200, #list .. " files")
    -- the last files hold one period (10 ms, more when the controller
    -- falls behind), not what came before (3 s)
    local _, middle = top { dir .. "/" .. list[#list // 2] }
    local _, last = top { dir .. "/" .. list[#list - 1] }
    assert.is_true(last < 0.25 and middle < 0.25, ("middle %.3f s, last %.3f s"):format(middle, last))
    -- over 2 s of CPU, one profile of the whole run grows with its distinct
    -- stacks (about 0.27 MB here, at the kernel's 250 samples a second);
    -- in periods it does not. Measured as the
    -- C heap in use, not the resident size, which keeps the peak of a slow
    -- period's snapshot (1 MB once, in a run that stayed bounded). A
    -- sanitizer's allocator keeps freed memory: not measured there
    local sanitized = (os.getenv("LD_PRELOAD") or ""):match("asan")
    if not sanitized then
      local whole = h.run("lua5.4 " .. h.quote(script),
        auto_env { SPROF_OUTPUT = dir .. "/whole.pb.gz", DIR = dir })
      local whole_growth = tonumber(whole.out)
      assert.is_true(whole_growth > 150, "the whole run grew " .. whole_growth .. " KB")
      assert.is_true(periodic_growth < 0.5 * whole_growth,
                     ("in periods %d KB, whole %d KB"):format(periodic_growth, whole_growth))
    end
  end)
end)

-- server_host (spec/c) through LD_PRELOAD: what servers do to a profiler.
describe("SPROF_PERIOD in a C server", function ()
  -- runs server_host with libsprof preloaded, stopped after 'limit' s: a
  -- hang is a failure, not a stuck suite
  local function server (args, env, limit)
    local preload = os.getenv("LD_PRELOAD")
    env.LD_PRELOAD = (preload and preload .. " " or "") .. h.build .. "/libsprof.so"
    return h.run("timeout " .. (limit or 60) .. " " .. h.quote(h.build .. "/spec/server_host")
                 .. " " .. args, env)
  end

  -- the collapsed stacks of the files in dir whose names match 'pattern'
  local function collapsed_of (dir, pattern)
    local text = {}
    local p = io.popen("ls " .. h.quote(dir))
    for name in p:lines() do
      if name:match(pattern) then text[#text + 1] = h.read(dir .. "/" .. name) end
    end
    p:close()
    return table.concat(text), #text
  end

  it("profiles a forked child in the child, leaving the parent's files alone", function ()
    local dir = new_dir()
    local r = server("fork 0.4", { SPROF_PERIOD = "0.05", SPROF_FORMAT = "collapsed",
                                   SPROF_KEEP = "3", SPROF_OUTPUT = dir .. "/f-%p-%n.txt" })
    assert.are.equal(0, r.status, r.err)  -- 124: it hung
    assert.are.equal("", r.err)
    local child = r.out:match("^child (%d+) 0\n")
    assert.is_truthy(child, r.out)
    local pids = {}
    for pid in io.popen("ls " .. h.quote(dir)):read("a"):gmatch("f%-(%d+)%-") do
      pids[pid] = true
    end
    pids[child] = nil
    local parent_pid = next(pids)
    assert.is_truthy(parent_pid, "no file of the parent")
    assert.is_nil(next(pids, parent_pid))
    local mine, nmine = collapsed_of(dir, "^f%-" .. child .. "%-%d+%.txt$")
    local theirs, ntheirs = collapsed_of(dir, "^f%-" .. parent_pid .. "%-%d+%.txt$")
    -- each process keeps its own 3 newest: the child removed none of the
    -- parent's (which wrote more: 0.5 s of Lua against 0.4)
    assert.are.equal(3, nmine)
    assert.are.equal(3, ntheirs)
    assert.matches("child_busy", mine)
    assert.not_matches("parent_busy", mine)
    assert.matches("parent_busy", theirs)
    assert.not_matches("child_busy", theirs)
  end)

  it("profiles 64 states open at once and says so in one line past that", function ()
    local dir = new_dir()
    local r = server("states 64 0.6", { SPROF_PERIOD = "0.1", SPROF_FORMAT = "collapsed",
                                         SPROF_OUTPUT = dir .. "/s-%n.txt" })
    assert.are.equal(0, r.status, r.err)
    assert.are.equal("", r.err)
    assert.matches("state_busy", (collapsed_of(dir, "^s%-%d+%.txt$")))
    r = server("states 66 0.6", { SPROF_PERIOD = "0.1", SPROF_OUTPUT = dir .. "/t-%n.txt" })
    assert.are.equal(0, r.status, r.err)
    assert.are.equal("states 66\n", r.out)
    local line = "sprof: too many Lua states open at once to profile (at most 64); "
                 .. "this one runs unprofiled\n"
    assert.are.equal(line:rep(2), r.err)
  end)

  it("does not hang a host that resumes coroutines itself, in 1 ms periods", function ()
    local dir = new_dir()
    local r = server("resume 2", { SPROF_PERIOD = "0.001", SPROF_FORMAT = "collapsed",
                                   SPROF_OUTPUT = dir .. "/r-%n.txt" })
    assert.are.equal(0, r.status, r.err)  -- 124: the controller and the host deadlocked
    assert.matches("^resumes %d+ told\n$", r.out)
    local _, n = collapsed_of(dir, "^r%-%d+%.txt$")
    assert.is_true(n >= 10, n .. " files")
  end)

  it("takes back a state closed from another thread than the one it ran in", function ()
    -- the worker's profiler leaves the signal handler's table before it
    -- is freed (a sanitizer or valgrind sees it read after that if not)
    local dir = new_dir()
    local r = server("thread 0.3", { SPROF_PERIOD = "0.1", SPROF_FORMAT = "collapsed",
                                     SPROF_OUTPUT = dir .. "/w-%n.txt" })
    assert.are.equal(0, r.status, r.err)
    assert.are.equal("", r.err)
    local text = collapsed_of(dir, "^w%-%d+%.txt$")
    assert.matches("worker_busy", text)
    assert.matches("main_busy", text)
    -- and each state to its own report
    r = server("thread 0.3", { SPROF_FORMAT = "collapsed", SPROF_OUTPUT = dir .. "/plain.txt" })
    assert.are.equal(0, r.status, r.err)
    assert.are.equal("", r.err)
    assert.matches("worker_busy", h.read(dir .. "/plain.txt"))
    assert.matches("main_busy", h.read(dir .. "/plain.2.txt"))
  end)
end)

describe("p:control{} periods", function ()
  local function texts (dir, pattern)
    local list = {}
    local p = io.popen("ls " .. h.quote(dir))
    for name in p:lines() do
      if name:match(pattern) then list[#list + 1] = h.read(dir .. "/" .. name) end
    end
    p:close()
    return list
  end

  it("report their own overhead after stop(), reset() and control{} again", function ()
    local dir = new_dir()
    local script = h.script(([[
local sprof = require "sprof"
local p = sprof.new()
local function overhead_hot (n) local x = 0 for i = 1, n do x = x + i %% 7 end return x end
for _ = 1, 2 do
  p:control{ period = 0.1, keep = 0, output = %q }
  local t0 = os.clock()
  repeat overhead_hot(10000) until os.clock() - t0 >= 0.25
  p:stop()
  p:reset()
end
]]):format(dir .. "/o-%n.txt"))
    local r = h.run("lua5.4 " .. h.quote(script), {})
    assert.are.equal(0, r.status, r.err)
    local list = texts(dir, "^o%-%d+%.txt$")
    assert.is_true(#list >= 4, #list .. " files")
    for _, text in ipairs(list) do
      local ms = tonumber(text:match("Profiler overhead: [%d%.]+%% of the run in the program's thread %(([%d%.]+) ms%)"))
      assert.is_truthy(ms, text)
      assert.is_true(ms < 1000, ms .. " ms of overhead in a period of 0.1 s")
    end
  end)

  it("put the time a profiled coroutine waits under [suspended]", function ()
    -- started in a coroutine that then yields for 0.5 s of the main
    -- thread's work: whole periods pass with it suspended
    local dir = new_dir()
    local script = h.script(([[
local sprof = require "sprof"
local p = sprof.new()
local clock = require("sleepy").thread_clock  -- this thread's CPU time
local function waiting_hot (n) local x = 0 for i = 1, n do x = x + i %% 7 end return x end
local function main_hot (n) local x = 0 for i = 1, n do x = x + i %% 7 end return x end
local co = coroutine.create(function ()
  p:control{ period = 0.1, keep = 0, output = %q, format = "collapsed" }
  local t0 = clock()
  repeat waiting_hot(10000) until clock() - t0 >= 0.2
  coroutine.yield()
  t0 = clock()
  repeat waiting_hot(10000) until clock() - t0 >= 0.2
  p:stop()
end)
coroutine.resume(co)
local t0 = clock()
repeat main_hot(10000) until clock() - t0 >= 0.5
coroutine.resume(co)
]]):format(dir .. "/c-%n.txt"))
    local r = h.run("lua5.4 " .. h.quote(script), {})
    assert.are.equal(0, r.status, r.err)
    local stacks, total = h.collapsed(table.concat(texts(dir, "^c%-%d+%.txt$")))
    local suspended, outside = 0, 0
    for _, s in ipairs(stacks) do
      if s.frames[#s.frames] == "[suspended]" then suspended = suspended + s.us end
      if s.frames[1]:match("^%(outside Lua%)") then outside = outside + s.us end
    end
    -- 0.5 s of CPU waited (more wall time on a busy machine)
    assert.is_true(suspended > 0.35e6, ("%d us suspended, %d outside Lua of %d"):format(suspended, outside, total))
    assert.is_true(outside < 0.1e6, ("%d us outside Lua"):format(outside))
  end)
end)

describe("SPROF_PERIOD's overhead", function ()
  it("counts the sampler thread in each period's header", function ()
    local dir = new_dir()
    local script = h.script(BUSY:format("0.8"))
    local r = h.run("lua5.4 " .. h.quote(script),
      auto_env { SPROF_PERIOD = "0.2", SPROF_OUTPUT = dir .. "/p-%n.json" })
    assert.are.equal(0, r.status, r.err)
    local p = io.popen("ls " .. h.quote(dir))
    local checked = 0
    for name in p:lines() do
      local json = h.read(dir .. "/" .. name)
      local samples = tonumber(json:match('"samples":(%d+)'))
      -- a period of the busy loop: 0.2 s at the kernel's tick (250 Hz on
      -- Debian, 100 Hz at the least), while the thread runs
      if samples and samples > 10 then
        assert.is_true(tonumber(json:match('"sampler_ns":(%d+)')) > 0, name)
        assert.is_true(tonumber(json:match('"overhead_ns":(%d+)')) > 0, name)
        checked = checked + 1
      end
    end
    p:close()
    assert.is_true(checked >= 2, "periods with samples: " .. checked)
  end)
end)
