-- sprof.web on a real HAProxy (Debian's haproxy, Lua 5.3): the example
-- (examples/web/haproxy.cfg) and services written here, on 127.0.0.1, on
-- free ports; curl sends the requests. HAProxy interrupts a Lua service
-- every tune.lua.forced-yield instructions through its own count hook:
-- the tests show that it still does while sprof samples the request
-- (sprof chains HAProxy's hook), and that tune.lua.service-timeout still
-- ends a service that never stops. Every server runs under `timeout` and
-- is stopped in the teardowns.
local h = require "spec.helper"

local EXAMPLE = h.root .. "/examples/web"
local MODULE = h.build .. "/lua5.3/sprof.so"

local function exists (path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local missing
if os.execute("command -v haproxy >/dev/null 2>&1") ~= true then
  missing = "haproxy is not installed (apt-get install haproxy)"
elseif not exists(MODULE) then
  missing = "no Lua 5.3 build: " .. MODULE .. " is missing (apt-get install liblua5.3-dev, then cmake again)"
end
if missing then
  describe("sprof.web on HAProxy", function () pending(missing) end)
  return
end

---------------------------------------------------------------------------
-- servers

local running = {}  -- started servers not stopped yet

local sleep, alive = h.sleep, h.alive

-- Starts a command in the checkout, in the background, with a clean
-- sprof.web environment plus 'env'; stdout and stderr go to files.
local function spawn (cmd, env)
  local pidfile, out, err = h.tmpfile(".pid"), h.tmpfile(".out"), h.tmpfile(".err")
  local vars = { "-u SPROF_WEB", "-u SPROF_WEB_TOKEN", "-u SPROF_WEB_DIR",
                 "-u LUA_PATH", "-u LUA_CPATH", "-u LUA_PATH_5_3", "-u LUA_CPATH_5_3" }
  for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. h.quote(v) end
  -- timeout: the server ends within 5 minutes whatever happens to us
  assert(os.execute(string.format(
    "cd %s && env %s timeout 300 %s >%s 2>%s </dev/null & echo $! >%s",
    h.quote(h.root), table.concat(vars, " "), cmd, h.quote(out), h.quote(err),
    h.quote(pidfile))))
  local proc = { pid = assert(tonumber(h.read(pidfile))), out = out, err = err }
  running[proc] = true
  return proc
end

-- Stops the servers: TERM, then KILL to what is left after 5 s.
local function stop_all () h.stop_servers(running) end

local CURL = h.CURL

local request = h.request

-- Starts a request in the background; its result is read with finish().
local function start_request (url)
  local body, out = h.tmpfile(".body"), h.tmpfile(".out")
  assert(os.execute(string.format(
    "%s -o %s -w '%%{http_code} %%{time_total}' %s >%s 2>/dev/null </dev/null &",
    CURL, h.quote(body), h.quote(url), h.quote(out))))
  return { body = body, out = out }
end

local function finish (pending_request)
  for _ = 1, 600 do  -- curl gives up after 60 s (-m 60)
    local status, time = (h.read(pending_request.out) or ""):match("^(%d+) ([%d.]+)$")
    if status then
      return { status = tonumber(status) ~= 0 and tonumber(status) or nil,
               body = h.read(pending_request.body) or "", time = tonumber(time) }
    end
    sleep(0.1)
  end
  error("a request did not end")
end

-- HAProxy in the foreground (-db) on a free port, with the configuration
-- make_config(port) returns.
local function haproxy (make_config, env)
  for _ = 1, 5 do  -- another program may take the port first
    local port = h.free_port()
    local conf = h.tmpfile(".cfg")
    h.write(conf, make_config(port))
    local vars = { SPROF_EXAMPLE_PORT = tostring(port), SPROF_BUILD = h.build }
    for k, v in pairs(env or {}) do vars[k] = v end
    local proc = spawn("haproxy -db -f " .. h.quote(conf), vars)
    proc.base = "http://127.0.0.1:" .. port
    if h.wait_ready(proc) then return proc end
  end
  stop_all()
  error("haproxy did not start")
end

local function example_config ()
  return (assert(h.read(EXAMPLE .. "/haproxy.cfg")))
end

-- Services for the tests, each a route of its own. 'hot' spins in crunch
-- for 0.3 s of CPU; 'hold' spins until a 'release' request has run (which
-- it can only if HAProxy interrupts 'hold') or for 10 s; 'forever' never
-- ends. The state is one (lua-load), so 'hold' and 'release' share it.
local SERVICES = [[
local web = require "sprof.web"
local clock = os.clock
local OPTIONS = { enabled = true }
-- 'hold' answers itself (it tells whether it was released); its report is saved
local SAVING = { enabled = true, save_dir = os.getenv("SPROF_TEST_DIR") }

local function crunch (n)
  local s = 0
  for i = 1, n do s = s + i % 7 end
  return s
end

local function reply (applet, body)
  applet:set_status(200)
  applet:add_header("content-type", "text/plain")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end

core.register_service("hot", "http", web.haproxy(function (applet)
  local t0 = clock()
  repeat crunch(10000) until clock() - t0 >= 0.3
  reply(applet, "hot done\n")
end, OPTIONS))

local released = false

core.register_service("hold", "http", web.haproxy(function (applet)
  released = false
  local t0 = clock()
  repeat crunch(10000) until released or clock() - t0 >= 10
  reply(applet, (released and "released after " or "not released after ")
                .. string.format("%.2f s\n", clock() - t0))
end, SAVING))

core.register_service("release", "http", function (applet)
  released = true
  reply(applet, "ok\n")
end)

core.register_service("forever", "http", web.haproxy(function (applet)
  while true do crunch(1000) end
end, OPTIONS))
]]

-- A configuration for SERVICES: one Lua state (lua-load), one thread.
local function services_config (forced_yield, timeout)
  local script = h.script(SERVICES)
  return function (port)
    return string.format([[
global
    nbthread 1
    lua-prepend-path "%s/runtime/?.lua"
    lua-prepend-path "%s/lua5.3/?.so" cpath
    lua-load "%s"
    tune.lua.forced-yield %d
    tune.lua.service-timeout %s
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend test
    bind 127.0.0.1:%d
    http-request use-service lua.hot if { path /hot }
    http-request use-service lua.hold if { path /hold }
    http-request use-service lua.release if { path /release }
    http-request use-service lua.forever if { path /forever }
    http-request return status 404
]], h.root, h.build, script, forced_yield, timeout, port)
  end
end

---------------------------------------------------------------------------
-- reports

local session_of, is_report = h.session_of, h.is_report
local time_in = h.session_time
local files, wait_files = h.files, h.wait_files

-- The hot function is most of the time the request ran (not of the time
-- it was suspended while HAProxy ran other work).
local function hot (session, name) h.hot(session, name, "[suspended]") end

-- A setup that starts servers: if one fails to start, those already
-- started are stopped before the error goes on.
local function starting (fn) return h.starting(stop_all, fn) end

---------------------------------------------------------------------------

describe("sprof.web on HAProxy: the example", function ()
  local off, on

  lazy_setup(starting(function ()
    off = haproxy(example_config)
    on = haproxy(example_config, { SPROF_WEB = "1" })
  end))

  lazy_teardown(stop_all)

  it("answers as usual without ?profile, and with it when profiling is off", function ()
    for _, server in ipairs { off, on } do
      local r = request(server.base .. "/api/items?n=2")
      assert.are.equal(200, r.status)
      assert.are.equal("application/json", r.headers["content-type"])
      assert.matches('^{"count":2,"items":%[{', r.body)
      r = request(server.base .. "/slow")
      assert.matches("^17984 primes up to 200000", r.body)
    end
    local r = request(off.base .. "/slow?profile")
    assert.matches("^17984 primes up to 200000", r.body)
  end)

  it("answers ?profile with the report of the request, its hot function first", function ()
    local r = request(on.base .. "/slow?profile")
    assert.are.equal("no-store", r.headers["cache-control"])
    local s = is_report(r)
    hot(s, "crunch")
    assert.are.equal("GET /slow", s.program)
    -- the waits between slices (core.msleep) are HAProxy's time: suspended
    assert.is_true(time_in(s, "[suspended]") > 0)
    -- the server goes on serving
    assert.matches('^{"count":2', request(on.base .. "/api/items?n=2").body)
  end)

  it("a failing request: report with status 500, the error in HAProxy's log", function ()
    local r = request(on.base .. "/boom?profile")
    assert.are.equal(500, r.status)
    hot(session_of(r.body), "load_inventory")
    assert.matches("sprof.web: GET /boom failed: [^\n]*app.lua:%d+: inventory service unavailable",
                   h.read(on.err))
    -- without ?profile: HAProxy's own error handling
    r = request(on.base .. "/boom")
    assert.are.equal(500, r.status)
  end)
end)

describe("sprof.web on HAProxy: its forced yields and timeouts go on", function ()
  local small, large

  local function newdir ()
    local dir = h.tmpfile(".dir")
    assert(os.execute("mkdir -p " .. h.quote(dir)))
    return dir
  end

  lazy_setup(starting(function ()
    local dir = newdir()
    small = haproxy(services_config(1000, "2s"), { SPROF_TEST_DIR = dir })
    small.dir = dir
    dir = newdir()
    -- (before sprof kept HAProxy's count between samples, its hook never
    -- ran here: HAProxy's watchdog killed it)
    large = haproxy(services_config(1000000, "5s"), { SPROF_TEST_DIR = dir })
    large.dir = dir
  end))

  lazy_teardown(stop_all)

  -- 'hold' can only end early if HAProxy interrupts it to serve 'release'
  local function hold_and_release (server, query)
    local held = start_request(server.base .. "/hold" .. query)
    sleep(0.3)
    local released = request(server.base .. "/release")
    return finish(held), released
  end

  -- the report of the last request to 'hold', saved in the server's dir
  local function hold_report (server, before)
    local list = wait_files(server.dir, before + 1)
    assert.matches("GET%-_hold", list[#list])
    return session_of(assert(h.read(server.dir .. "/" .. list[#list])))
  end

  for _, case in ipairs { { "small", "every 1000 instructions" },
                          { "large", "rare: every 1,000,000 instructions" } } do
    it("a profiled request is interrupted, another runs meanwhile (forced yields "
       .. case[2] .. ")", function ()
      local server = case[1] == "small" and small or large
      local before = #files(server.dir)
      local held, released = hold_and_release(server, "?profile")
      assert.are.equal(200, released.status)
      assert.is_true(released.time < 30, "release took " .. released.time .. " s")
      assert.are.equal(200, held.status)
      assert.matches("^released after", held.body)
      -- the report: the request's own time, and (when HAProxy interrupts it
      -- often) the time it was interrupted
      local s = hold_report(server, before)
      hot(s, "crunch")
      if server == small then assert.is_true(time_in(s, "[suspended]") > 0) end
    end)
  end

  -- (with forced yields every 1,000,000 instructions, HAProxy 2.6 does not
  -- end /forever even unprofiled: its timeout is checked at the yields)
  it("tune.lua.service-timeout still ends a profiled service that never stops", function ()
    local r = request(small.base .. "/forever?profile")
    assert.are.equal(500, r.status)
    assert.is_true(r.time < 10, "ended after " .. r.time .. " s")
    assert.matches("Lua applet http '<lua%.forever>': [^\n]*execution timeout", h.read(small.err))
    -- the server goes on, and profiles again: at once, or (when HAProxy
    -- dropped the ended request's coroutine without an error) once HAProxy
    -- has freed it; meanwhile ?profile is served unprofiled
    local report
    for _ = 1, 20 do
      r = request(small.base .. "/hot?profile")
      assert.are.equal(200, r.status)
      if r.headers["content-type"] ~= "text/plain" then report = r break end
      assert.are.equal("hot done\n", r.body)
      sleep(0.1)
    end
    assert.is_truthy(report, "no report after the timeout")
    hot(is_report(report), "crunch")
  end)
end)

-- Without sprof.web: libsprof-preload.so finds that HAProxy runs Lua 5.3
-- and profiles its states; HAProxy runs each request in a coroutine it
-- resumes itself, which the preloaded lua_resume tells the profiler of.
describe("HAProxy under LD_PRELOAD=libsprof-preload.so", function ()
  local PRELOAD = h.build .. "/libsprof-preload.so"
  local test = exists(PRELOAD) and it or pending

  test("reports the service's Lua functions when HAProxy stops", function ()
    local dir = h.tmpfile("-reports")
    assert(os.execute("mkdir -p " .. h.quote(dir)))
    -- a plain service, no sprof.web: the time of /hot is in crunch
    local plain = h.script([[
local clock = os.clock
local function crunch (n) local s = 0 for i = 1, n do s = s + i % 7 end return s end
core.register_service("hot", "http", function (applet)
  local t0 = clock()
  repeat crunch(10000) until clock() - t0 >= 0.3
  applet:set_status(200)
  applet:add_header("content-length", "9")
  applet:start_response()
  applet:send("hot done\n")
end)
]])
    local proc = haproxy(function (port)
      return string.format([[
global
    nbthread 1
    lua-load "%s"
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend test
    bind 127.0.0.1:%d
    http-request use-service lua.hot if { path /hot }
    http-request return status 404
]], plain, port)
    end, { LD_PRELOAD = (os.getenv("LD_PRELOAD") and os.getenv("LD_PRELOAD") .. " " or "")
                        .. PRELOAD,  -- (after a sanitizer runtime CI puts first)
           SPROF_OUTPUT = dir .. "/hap-%p.collapsed" })
    for _ = 1, 2 do assert.are.equal("hot done\n", request(proc.base .. "/hot").body) end
    -- SIGUSR1 to HAProxy (timeout's child): its soft stop; the reports are
    -- written as it exits
    local children = h.read("/proc/" .. proc.pid .. "/task/" .. proc.pid .. "/children") or ""
    for child in children:gmatch("%d+") do os.execute("kill -USR1 " .. child) end
    for _ = 1, 100 do
      if not alive(proc.pid) then break end
      sleep(0.05)
    end
    stop_all()
    local found = h.run("cat " .. h.quote(dir) .. "/hap-*.collapsed").out
    local stacks = h.collapsed(found)
    -- two requests of 0.3 s of CPU each in crunch, under the service
    assert.is_true(h.time_along(stacks, { "crunch" }) >= 0.4e6, found)
  end)
end)
