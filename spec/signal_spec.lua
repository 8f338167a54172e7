-- Profiling on a signal (SPROF_SIGNAL): a real lighttpd with mod_magnet
-- and LD_PRELOAD=libsprof.so on 127.0.0.1 (free ports), and lua5.4 with
-- sprof.auto, each sent the signal by the test. Servers run under
-- `timeout` and are stopped in the teardown.
local h = require "spec.helper"

local LIBSPROF = h.build .. "/libsprof.so"
local LUA_PATH = h.root .. "/runtime/?.lua;;"

local running = {}  -- started processes not stopped yet

local function sleep (s) os.execute("sleep " .. s) end

local function alive (pid)
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

-- A preload already set (a sanitizer's runtime) stays first.
local function with_libsprof ()
  local preload = os.getenv("LD_PRELOAD")
  return (preload and preload .. " " or "") .. LIBSPROF
end

-- Starts a command under `timeout` in the background; proc.pid is the
-- command's own (timeout's child), found once it has started.
local function spawn (cmd, env)
  local pidfile, out, err = h.tmpfile(".pid"), h.tmpfile(".out"), h.tmpfile(".err")
  local vars = {}
  for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. h.quote(v) end
  assert(os.execute(string.format("env %s timeout 300 %s >%s 2>%s </dev/null & echo $! >%s",
    table.concat(vars, " "), cmd, h.quote(out), h.quote(err), h.quote(pidfile))))
  local proc = { timeout_pid = assert(tonumber(h.read(pidfile))), out = out, err = err }
  for _ = 1, 200 do
    local children = h.read("/proc/" .. proc.timeout_pid .. "/task/"
                            .. proc.timeout_pid .. "/children") or ""
    proc.pid = tonumber(children:match("%d+"))
    if proc.pid then break end
    sleep(0.01)
  end
  assert(proc.pid, "the command did not start: " .. cmd)
  running[proc] = true
  return proc
end

-- Stops a process gracefully (lighttpd: INT) and returns its exit status.
local function stop (proc, signal)
  if not running[proc] then return nil end
  running[proc] = nil
  os.execute("kill -" .. (signal or "INT") .. " " .. proc.pid .. " 2>/dev/null")
  for _ = 1, 200 do
    if not alive(proc.timeout_pid) then break end
    sleep(0.05)
  end
  if alive(proc.timeout_pid) then
    os.execute("kill -KILL " .. proc.pid .. " " .. proc.timeout_pid .. " 2>/dev/null")
  end
end

local function stop_all ()
  for proc in pairs(running) do stop(proc) end
end

local function signal (proc, name)
  assert(os.execute("kill -" .. name .. " " .. proc.pid))
end

-- Waits up to 'secs' for a file to exist; its text, or nil.
local function wait_file (path, secs)
  for _ = 1, math.floor(secs / 0.05) do
    local text = h.read(path)
    if text then return text end
    sleep(0.05)
  end
end

local function lines_of (text)
  local lines = {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines
end

local function threads_of (proc)
  local n = 0
  local p = io.popen("ls /proc/" .. proc.pid .. "/task 2>/dev/null")
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

local free_port = h.free_port

local CURL = h.CURL

-- One GET; the HTTP status (nil when no answer came) and the body.
local function get (url)
  local body = h.tmpfile(".body")
  local r = h.run(string.format(CURL .. " -o %s -w '%%{http_code}' %s",
                                h.quote(body), h.quote(url)))
  local status = tonumber(r.out)
  return status ~= 0 and status or nil, h.read(body) or ""
end

-- Two magnet scripts, each run in its own Lua state for every request:
-- the first works for /b only, the second for /a and /b and answers. Each
-- request takes a given CPU time (os.clock), not a count of iterations.
local FIRST = [[
local function first_state_b (secs)
  local t0, x = os.clock(), 0
  repeat for i = 1, 1000 do x = x + i % 7 end until os.clock() - t0 >= secs
  return x
end
if lighty.r.req_attr["uri.path"] == "/b" then first_state_b(0.005) end
]]
local SECOND = [[
local function handler_a_hot (secs)
  local t0, x = os.clock(), 0
  repeat for i = 1, 1000 do x = x + i % 5 end until os.clock() - t0 >= secs
  return x
end
local function handler_b_hot (secs)
  local t0, x = os.clock(), 0
  repeat for i = 1, 1000 do x = x + i % 3 end until os.clock() - t0 >= secs
  return x
end
local path = lighty.r.req_attr["uri.path"]
if path == "/a" then handler_a_hot(0.02) elseif path == "/b" then handler_b_hot(0.015) end
lighty.r.resp_body:set({ "ok\n" })
return 200
]]

local function lighttpd (env)
  local first, second = h.script(FIRST), h.script(SECOND)
  for _ = 1, 5 do  -- another program may take the port first
    local port = free_port()
    local conf = h.tmpfile(".conf")
    h.write(conf, string.format([[
server.document-root = %q
server.bind = "127.0.0.1"
server.port = %d
server.modules = ( "mod_magnet" )
magnet.attract-raw-url-to = ( %q, %q )
]], h.tmpdir, port, first, second))
    env.LD_PRELOAD = with_libsprof()
    local proc = spawn("lighttpd -D -f " .. h.quote(conf), env)
    proc.base = "http://127.0.0.1:" .. port
    for _ = 1, 200 do
      if get(proc.base .. "/ready") == 200 then return proc end
      if not alive(proc.pid) then break end
      sleep(0.05)
    end
    stop(proc)
  end
  error("lighttpd did not start")
end

-- n requests to a path, each of which must be answered
local function requests (proc, path, n)
  for _ = 1, n do
    local status, body = get(proc.base .. path)
    assert.are.equal(200, status, "no answer to " .. path)
    assert.are.equal("ok\n", body)
  end
end

describe("SPROF_SIGNAL with LD_PRELOAD on lighttpd", function ()
  teardown(stop_all)

  it("profiles between two signals, all states in one report, and again", function ()
    local dir = h.tmpfile(".d")
    assert(os.execute("mkdir " .. h.quote(dir)))
    local proc = lighttpd { SPROF_SIGNAL = "USR2", SPROF_OUTPUT = dir .. "/report-%n.txt" }
    requests(proc, "/a", 10)
    -- before the first signal: set up, but no sampler threads tick
    local idle_threads = threads_of(proc)
    signal(proc, "USR2")
    sleep(0.3)  -- the controller looks every 20 ms
    assert.is_true(threads_of(proc) > idle_threads, "no sampler threads after the signal")
    requests(proc, "/b", 15)
    signal(proc, "USR2")
    local report = wait_file(dir .. "/report-1.txt", 10)
    assert.is_truthy(report, "no report after the second signal")
    assert.matches("handler_b_hot", report)
    assert.matches("first_state_b", report)      -- the other state's, merged
    assert.matches("mod_magnet%.so", report)     -- native frames: the host's path
    assert.not_matches("handler_a_hot", report)  -- served before the first signal
    sleep(0.3)
    assert.are.equal(idle_threads, threads_of(proc), "samplers left running")
    requests(proc, "/a", 5)  -- still serving, and not profiled
    -- the next pair writes the next report
    signal(proc, "USR2")
    sleep(0.3)
    requests(proc, "/b", 5)
    signal(proc, "USR2")
    local second = wait_file(dir .. "/report-2.txt", 10)
    assert.is_truthy(second, "no second report")
    assert.matches("handler_b_hot", second)
    assert.not_matches("handler_a_hot", second)
    requests(proc, "/a", 2)
    stop(proc)
    -- stopped while not sampling: no third report
    assert.is_nil(h.read(dir .. "/report-3.txt"))
  end)

  it("writes what was sampled when the server stops while sampling", function ()
    local dir = h.tmpfile(".d")
    assert(os.execute("mkdir " .. h.quote(dir)))
    -- no %n: the first report takes the name as it is
    -- (lighttpd has its own USR1: graceful restart)
    local proc = lighttpd { SPROF_SIGNAL = "SIGUSR2", SPROF_OUTPUT = dir .. "/cut.json" }
    signal(proc, "USR2")
    sleep(0.3)
    requests(proc, "/b", 10)
    stop(proc)
    local json = wait_file(dir .. "/cut.json", 10)
    assert.is_truthy(json, "nothing written at the server's exit")
    assert.matches('"name":"handler_b_hot"', json)
  end)
end)

-- lua5.4 with sprof.auto: the script waits between phases for files the
-- test makes, so the signals fall between them.
local PHASES = [[
local dir = arg[1]
local function exists (name)
  local f = io.open(dir .. "/" .. name)
  if f then f:close() return true end
end
local function touch (name) io.open(dir .. "/" .. name, "w"):close() end
local function wait_for (name)
  while not exists(name) do os.execute("sleep 0.02") end
end
local function busy (fn, secs)
  local t0 = os.clock()
  repeat fn(1000) until os.clock() - t0 >= secs
end
local function auto_phase_a (n) local x = 0 for i = 1, n do x = x + i % 7 end return x end
local function auto_phase_b (n) local x = 0 for i = 1, n do x = x + i % 5 end return x end
busy(auto_phase_a, 0.2) touch("a-done") wait_for("go")
busy(auto_phase_b, 0.3) touch("b-done") wait_for("end")
print("done")
]]

describe("SPROF_SIGNAL with sprof.auto in lua5.4", function ()
  teardown(stop_all)

  it("profiles the script between two signals", function ()
    local dir = h.tmpfile(".d")
    assert(os.execute("mkdir " .. h.quote(dir)))
    local proc = spawn("lua5.4 " .. h.quote(h.script(PHASES)) .. " " .. h.quote(dir),
      { LUA_INIT_5_4 = 'require "sprof.auto"', LUA_PATH = LUA_PATH,
        LUA_CPATH = h.cpath, SPROF_SIGNAL = "USR2",
        SPROF_OUTPUT = dir .. "/auto-%p-%n.collapsed" })
    assert.is_truthy(wait_file(dir .. "/a-done", 20))
    signal(proc, "USR2")
    sleep(0.2)
    h.write(dir .. "/go", "")
    assert.is_truthy(wait_file(dir .. "/b-done", 20))
    signal(proc, "USR2")
    local path = dir .. "/auto-" .. proc.pid .. "-1.collapsed"
    local text = wait_file(path, 10)
    assert.is_truthy(text, "no report")
    h.write(dir .. "/end", "")
    for _ = 1, 100 do
      if not alive(proc.timeout_pid) then break end
      sleep(0.05)
    end
    running[proc] = nil
    assert.are.equal("done\n", h.read(proc.out))
    local stacks = h.collapsed(text)
    assert.is_true(h.time_in(stacks, "auto_phase_b") > 100000, text)  -- us
    assert.are.equal(0, h.time_in(stacks, "auto_phase_a"))
  end)
end)

describe("SPROF_SIGNAL with SPROF_PERIOD", function ()
  teardown(stop_all)

  it("switches continuous profiling on and off", function ()
    local dir = h.tmpfile(".d")
    assert(os.execute("mkdir " .. h.quote(dir)))
    local proc = spawn("lua5.4 " .. h.quote(h.script(PHASES)) .. " " .. h.quote(dir),
      { LUA_INIT_5_4 = 'require "sprof.auto"', LUA_PATH = LUA_PATH,
        LUA_CPATH = h.cpath, SPROF_SIGNAL = "USR2", SPROF_PERIOD = "0.1",
        SPROF_OUTPUT = dir .. "/both-%n.pb.gz" })
    local function count ()
      local n = 0
      local p = io.popen("ls " .. h.quote(dir))
      for name in p:lines() do
        if name:match("^both%-%d+%.pb%.gz$") then n = n + 1 end
      end
      p:close()
      return n
    end
    assert.is_truthy(wait_file(dir .. "/a-done", 20))
    assert.are.equal(0, count())  -- off until the first signal
    signal(proc, "USR2")
    sleep(0.2)
    h.write(dir .. "/go", "")
    assert.is_truthy(wait_file(dir .. "/b-done", 20))
    signal(proc, "USR2")
    -- the last period's file comes once the controller sees the signal
    -- (within 20 ms, later on a loaded machine): until the count settles
    local written, waited = count(), 0
    repeat
      sleep(0.3)
      waited = waited + 0.3
      local now = count()
      local settled = now == written
      written = now
    until settled or waited > 20
    assert.is_true(written >= 3, written .. " files")  -- 0.3 s of CPU in 0.1 s periods
    sleep(0.5)
    assert.are.equal(written, count())  -- off again: no more periods
    h.write(dir .. "/end", "")
    for _ = 1, 100 do
      if not alive(proc.timeout_pid) then break end
      sleep(0.05)
    end
    running[proc] = nil
    assert.are.equal(written, count())  -- nothing sampled since: no file at exit
    local all = {}
    for i = 1, written do all[i] = h.quote(dir .. "/both-" .. i .. ".pb.gz") end
    local r = h.go_pprof("-top " .. table.concat(all, " "))
    assert.matches("auto_phase_b", r.out)
    assert.not_matches("auto_phase_a", r.out)
  end)
end)

describe("SPROF_SIGNAL and SPROF_PERIOD bad input", function ()
  local script = h.script [[
local t0, x = os.clock(), 0
repeat x = x + 1 until os.clock() - t0 >= 0.02
print("ran")
]]
  local cases = {
    { { SPROF_SIGNAL = "USR9" }, "SPROF_SIGNAL 'USR9' is not a signal" },
    { { SPROF_SIGNAL = "KILL" }, "SPROF_SIGNAL 'KILL' is not a signal" },
    { { SPROF_PERIOD = "often" }, "SPROF_PERIOD must be a positive number" },
    { { SPROF_PERIOD = "-1" }, "SPROF_PERIOD must be a positive number" },
    { { SPROF_PERIOD = "1", SPROF_KEEP = "3.5" }, "SPROF_KEEP must be a whole number" },
    { { SPROF_SIGNAL = "USR2", SPROF_OUTPUT = "/nonexistent/dir/p-%n.txt" },
      "cannot write reports into '/nonexistent/dir'" },
  }

  it("is told in one line by the preload library, and the host runs unprofiled", function ()
    for _, case in ipairs(cases) do
      local env, message = case[1], case[2]
      env.LD_PRELOAD = with_libsprof()
      local r = h.run(h.quote(h.build .. "/spec/plain_host") .. " " .. h.quote(script), env)
      assert.are.equal(0, r.status, r.err)
      assert.are.equal("ran\nran\n", r.out)
      local lines = lines_of(r.err)
      assert.are.equal(1, #lines, r.err)
      assert.matches("^sprof: .*" .. message:gsub("%p", "%%%0") .. ".*; the program runs unprofiled$", lines[1])
    end
  end)

  it("is told in one line by sprof.auto, and lua5.4 runs unprofiled", function ()
    for _, case in ipairs(cases) do
      local env, message = case[1], case[2]
      env.LD_PRELOAD = nil
      env.LUA_INIT_5_4 = 'require "sprof.auto"'
      env.LUA_PATH = LUA_PATH
      local r = h.run("lua5.4 " .. h.quote(script), env)
      assert.are.equal(0, r.status, r.err)
      assert.are.equal("ran\n", r.out)
      local lines = lines_of(r.err)
      assert.are.equal(1, #lines, r.err)
      assert.matches("^sprof%.auto: .*" .. message:gsub("%p", "%%%0") .. ".*; the program runs unprofiled$", lines[1])
    end
  end)

  it("refuses memory profiling with them in one line, and profiles time", function ()
    local dir = h.tmpfile(".d")
    assert(os.execute("mkdir " .. h.quote(dir)))
    local r = h.run("lua5.4 " .. h.quote(script),
      { LUA_INIT_5_4 = 'require "sprof.auto"', LUA_PATH = LUA_PATH, SPROF_MEMORY = "1",
        SPROF_PERIOD = "10", SPROF_OUTPUT = dir .. "/m-%n.collapsed" })
    assert.are.equal(0, r.status, r.err)
    assert.are.equal("ran\n", r.out)
    local lines = lines_of(r.err)
    assert.are.equal(1, #lines, r.err)
    assert.matches("SPROF_MEMORY does not work with SPROF_SIGNAL or SPROF_PERIOD", lines[1])
    assert.is_truthy(h.read(dir .. "/m-1.collapsed"), "the time profile at exit")
  end)
end)

describe("SPROF_SIGNAL and the program's own SIGPROF", function ()
  it("passes a SIGPROF that is not sprof's on, sampling or not", function ()
    -- server_host sets its SIGPROF handler, makes a state (set up and
    -- paused until SPROF_SIGNAL comes, or sampling in periods), raises
    -- SIGPROF 5 times
    for _, env in ipairs { { SPROF_SIGNAL = "USR2" }, { SPROF_PERIOD = "0.1" } } do
      env.LD_PRELOAD = with_libsprof()
      env.SPROF_OUTPUT = h.tmpfile("-%n.txt")
      local r = h.run("timeout 60 " .. h.quote(h.build .. "/spec/server_host") .. " sigprof", env)
      assert.are.equal(0, r.status, r.err)
      assert.are.equal("sigprof 5\n", r.out)
    end
  end)
end)
