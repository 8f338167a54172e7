-- sprof.web on a real nginx with its Lua module (Debian's nginx and
-- libnginx-mod-http-lua, on LuaJIT): the example (examples/web/run-nginx,
-- nginx.conf, nginx-app.lua) and handlers written here, on 127.0.0.1, on
-- free ports; curl sends the requests. Each nginx worker is a process
-- with a Lua state of its own and runs each request in a coroutine; the
-- profiler runs in the profiled request's, one request per worker at a
-- time. Every server runs under `timeout` and is stopped in the
-- teardowns.
local h = require "spec.helper"

local EXAMPLE = h.root .. "/examples/web"
local MODULE = h.build .. "/luajit/sprof.so"
local MODULES = "/usr/lib/nginx/modules"

local function exists (path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local NGINX = exists("/usr/sbin/nginx") and "/usr/sbin/nginx" or "nginx"

local missing
if not (exists("/usr/sbin/nginx") or os.execute("command -v nginx >/dev/null 2>&1") == true)
   or not exists(MODULES .. "/ngx_http_lua_module.so") then
  missing = "nginx with its Lua module is not installed (apt-get install nginx libnginx-mod-http-lua)"
elseif not exists(MODULE) then
  missing = "no LuaJIT build: " .. MODULE .. " is missing (apt-get install libluajit2-5.1-dev, then cmake again)"
end

package.path = h.root .. "/runtime/?.lua;" .. package.path

-- Without nginx: what web.ngx checks, and a request without ?profile
-- (an ngx table that stands in for nginx's).
describe("sprof.web.ngx", function ()
  local web = require "sprof.web"

  it("wants a function and known options, and nginx's ngx table", function ()
    local ok, err = pcall(web.ngx, "serve")
    assert.is_false(ok)
    assert.matches("sprof.web: ngx wants the content handler, got string", err)
    ok, err = pcall(web.ngx, print, { save = "/tmp" })
    assert.is_false(ok)
    assert.matches("sprof.web: unknown option 'save'", err)
    ok, err = pcall(web.ngx, print)
    assert.is_false(ok)
    assert.matches("sprof.web: ngx runs in nginx's Lua module only", err)
  end)

  it("hands a request without ?profile to the handler untouched", function ()
    local said = {}
    local fake = { var = { args = "a=1&profiler=2", uri = "/" },
                   say = function (s) said[#said + 1] = s return 1 end }
    local say = fake.say
    _G.ngx = fake
    local ok, err = pcall(function ()
      local serve = web.ngx(function (a, b)
        fake.say("hello")
        return a + b
      end, { enabled = true })
      assert.are.equal(3, serve(1, 2))
    end)
    _G.ngx = nil
    assert(ok, err)
    assert.are.same({ "hello" }, said)
    assert.are.equal(say, fake.say)  -- nothing of the ngx table replaced
  end)
end)

if missing then
  describe("sprof.web on nginx", function () pending(missing) end)
  return
end

-- Started as root, nginx's workers run as nobody: they read the handlers
-- in the spec's temporary directory and write where the tests ask them to.
os.execute("chmod o+x " .. h.quote(h.tmpdir))

local newdir = h.shared_dir

---------------------------------------------------------------------------
-- servers

local running = {}  -- started servers not stopped yet

local sleep = h.sleep

-- Starts a command in the checkout, in the background, with a clean
-- sprof.web environment plus 'env'; stdout and stderr (nginx's error
-- log) go to files.
local function spawn (cmd, env)
  local pidfile, out, err = h.tmpfile(".pid"), h.tmpfile(".out"), h.tmpfile(".err")
  local vars = { "-u SPROF_WEB", "-u SPROF_WEB_TOKEN", "-u SPROF_WEB_DIR",
                 "-u LUA_PATH", "-u LUA_CPATH", "SPROF_BUILD=" .. h.quote(h.build) }
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

-- A setup that starts servers: if one fails to start, those already
-- started are stopped before the error goes on.
local function starting (fn) return h.starting(stop_all, fn) end

-- A server on a free port, once it answers: start(port) spawns it.
local function serve_on_free_port (start)
  for _ = 1, 5 do  -- another program may take the port first
    local port = h.free_port()
    local proc = start(port)
    proc.base = "http://127.0.0.1:" .. port
    if h.wait_ready(proc) then return proc end
    h.stop_servers(running, { proc })
  end
  error("nginx did not start")
end

-- The example: run-nginx on a free port.
local function example (env)
  return serve_on_free_port(function (port)
    return spawn(h.quote(EXAMPLE .. "/run-nginx") .. " " .. port, env)
  end)
end

-- Handlers for the tests, each a location of its own (the last part of
-- the path). 'work' spins for 0.6 s of CPU in crunch_alpha or, with
-- ?fn=beta, in crunch_beta, and logs its name (the error log's line says
-- which worker). 'nap' spins, sleeps 0.3 s or ?sleep=S (ngx.sleep: the
-- worker serves others meanwhile), spins again. 'boom' fails; 'done' ends with ngx.exit;
-- 'bypass' answers and ends through copies of ngx.say and ngx.exit,
-- 'early' answers through its copy of ngx.say.
-- /off/... runs them under a web.ngx with enabled = false.
local HANDLERS = [[
local web = require "sprof.web"
local ngx = ngx
local clock = os.clock

local function spin (n)
  local s = 0
  for i = 1, n do s = s + i % 7 end
  return s
end

local function crunch_alpha (seconds)
  local t0 = clock()
  repeat spin(10000) until clock() - t0 >= seconds
end

local function crunch_beta (seconds)
  local t0 = clock()
  repeat spin(10000) until clock() - t0 >= seconds
end

local routes = {}

function routes.work ()
  local fn = ngx.var.arg_fn == "beta" and "beta" or "alpha"
  ngx.log(ngx.WARN, "work ", fn, " started")
  if fn == "beta" then crunch_beta(0.6) else crunch_alpha(0.6) end
  ngx.header["Content-Type"] = "text/plain"
  ngx.say("work ", fn, " done")
end

function routes.nap ()
  crunch_alpha(0.1)
  ngx.log(ngx.WARN, "nap sleeps")
  ngx.sleep(tonumber(ngx.var.arg_sleep) or 0.3)
  crunch_alpha(0.1)
  ngx.say("nap done")
end

local function explode ()
  crunch_beta(0.2)
  error("the handler failed")
end

function routes.boom ()
  explode()
end

function routes.done ()
  crunch_beta(0.2)
  ngx.status = 202
  ngx.header["Content-Type"] = "text/plain"
  ngx.say("done early")
  ngx.exit(202)
  error("ngx.exit returned")
end

-- copies made as the module loads, before any profile: nginx's own
local say, exit = ngx.say, ngx.exit

function routes.bypass ()
  crunch_beta(0.1)
  say("bypassed")
  exit(200)
end

function routes.early ()
  crunch_beta(0.1)
  say("answered early")
end

local function route ()
  local f = routes[ngx.var.uri:match("[^/]*$")]
  if not f then return ngx.exit(404) end
  return f()
end

return { serve = web.ngx(route), off = web.ngx(route, { enabled = false }) }
]]

local handlers_dir  -- where HANDLERS is, as ngx_test_handlers.lua

local function config (port, workers, run, build)
  return string.format([[
load_module %s/ndk_http_module.so;
load_module %s/ngx_http_lua_module.so;
daemon off;
worker_processes %d;
pid %s/nginx.pid;
error_log stderr warn;
env SPROF_WEB;
env SPROF_WEB_TOKEN;
env SPROF_WEB_DIR;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %s/client_body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fastcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
    lua_package_path "%s/?.lua;%s/runtime/?.lua;;";
    lua_package_cpath "%s/luajit/?.so;;";
    server {
        listen 127.0.0.1:%d;
        location /off/ { content_by_lua_block { require("ngx_test_handlers").off() } }
        location / { content_by_lua_block { require("ngx_test_handlers").serve() } }
    }
}
]], MODULES, MODULES, workers, run, run, run, run, run, run, handlers_dir,
    h.root, build, port)
end

-- nginx with the test handlers and 'workers' workers, with sprof.so
-- from 'build' (default: the one tested).
local function handlers (workers, env, build)
  if not handlers_dir then
    handlers_dir = newdir()
    h.write(handlers_dir .. "/ngx_test_handlers.lua", HANDLERS)
  end
  return serve_on_free_port(function (port)
    local run = h.tmpfile(".run")
    assert(os.execute("mkdir -m 755 " .. h.quote(run)))
    local conf = run .. "/nginx.conf"
    h.write(conf, config(port, workers, run, build or h.build))
    return spawn(string.format("%s -p %s -c %s -e stderr", NGINX, h.quote(run),
                               h.quote(conf)), env)
  end)
end

local request = h.request

-- Starts a request in the background; its result is read with finish().
local function start_request (url)
  local body, head, out = h.tmpfile(".body"), h.tmpfile(".head"), h.tmpfile(".out")
  assert(os.execute(string.format(
    "%s -o %s -D %s -w '%%{http_code} %%{time_total}' %s >%s 2>/dev/null </dev/null &",
    h.CURL, h.quote(body), h.quote(head), h.quote(url), h.quote(out))))
  return { body = body, head = head, out = out }
end

-- The response of a request started in the background, as h.request's.
local function finish (started)
  for _ = 1, 600 do  -- curl gives up after 60 s (-m 60)
    local status, time = (h.read(started.out) or ""):match("^(%d+) ([%d.]+)$")
    if status then
      local headers = {}
      for name, value in (h.read(started.head) or ""):gmatch("([%w%-]+):%s*([^\r\n]*)") do
        headers[name:lower()] = value
      end
      return { status = tonumber(status) ~= 0 and tonumber(status) or nil,
               body = h.read(started.body) or "", headers = headers, time = tonumber(time) }
    end
    sleep(0.1)
  end
  error("a request did not end")
end

---------------------------------------------------------------------------
-- reports

local session_of, is_report = h.session_of, h.is_report
local time_in, has_frame = h.session_time, h.has_frame
local files, wait_files = h.files, h.wait_files

local stacks_of = h.stacks_of

-- The hot function is most of the time the request ran (not of the time
-- it waited while the worker served others).
local function hot (session, name) h.hot(session, name, "[suspended]") end

-- The lines of the server's error log that hold 'text'.
local function log_lines (server, text)
  local lines = {}
  for line in (h.read(server.err) or ""):gmatch("[^\n]+") do
    if line:find(text, 1, true) then lines[#lines + 1] = line end
  end
  return lines
end

local NAME = "^%d%d%d%d%d%d%d%d%-%d%d%d%d%d%d%-"  -- date-time-

-- The example's /slow: 15 ms of CPU on LuaJIT, its crunch compiled with
-- the loop of slow that calls it, and LuaJIT's profiler calls back where
-- compiled code returns to the interpreter: there, in slow (see README,
-- "LuaJIT"). So the route's function, slow, is what its report must show
-- most of; the handlers below, which spin for longer, show their own.
-- /slow's CPU comes in slices of a millisecond or two between waits, and
-- LuaJIT's process CPU timer is checked at the kernel's tick (4 ms): a
-- request may get no sample of its own. Its time is then [unsampled],
-- never the wrapper's; with samples, most of it is slow's.
local function slow_report (session)
  assert.are.equal("GET /slow", session.program)
  local slow = h.session_time(session, "slow")
  local unsampled = h.session_time(session, "[unsampled]")
  local _, total = h.session_time(session, "slow")
  local own = total - h.session_time(session, "[suspended]")
  assert.is_true(own > 0)
  if session.samples < 4 then  -- too few ticks to judge shares (seen: 2,
    -- one in slow and one in the wrapper's header call right after it)
    assert.is_true(slow + unsampled > 0, stacks_of(session))
  elseif unsampled < 0.5 * own then
    hot(session, "slow")
  else
    assert.is_true(slow + unsampled > 0.8 * own, stacks_of(session))
  end
end

---------------------------------------------------------------------------

describe("sprof.web on nginx: the example", function ()
  local off, on, saving, dir

  lazy_setup(starting(function ()
    dir = newdir()
    off = example()
    on = example({ SPROF_WEB = "1" })
    saving = example({ SPROF_WEB = "1", SPROF_WEB_TOKEN = "s3cret", SPROF_WEB_DIR = dir })
  end))

  lazy_teardown(stop_all)

  it("answers as usual without ?profile", function ()
    for _, server in ipairs { off, on, saving } do
      local r = request(server.base .. "/")
      assert.are.equal(200, r.status)
      assert.are.equal("text/html; charset=utf-8", r.headers["content-type"])
      assert.matches("<h1>Catalogue</h1>", r.body)
      r = request(server.base .. "/slow")
      assert.are.equal(200, r.status)
      assert.matches("^17984 primes up to 200000", r.body)
      r = request(server.base .. "/api/items?n=2")
      assert.are.equal("application/json", r.headers["content-type"])
      assert.matches('^{"count":2,"items":%[{', r.body)
      r = request(server.base .. "/nothing")
      assert.are.equal(404, r.status)
      assert.are.equal("not found\n", r.body)
    end
  end)

  it("is off unless enabled (SPROF_WEB=1): ?profile is an ordinary argument then", function ()
    local r = request(off.base .. "/slow?profile")
    assert.are.equal(200, r.status)
    assert.matches("^17984 primes up to 200000", r.body)
    assert.are.same({}, log_lines(off, "sprof.web"))
  end)

  it("answers ?profile with the report of the request", function ()
    local r = request(on.base .. "/slow?profile")
    assert.are.equal("no-store", r.headers["cache-control"])
    local s = is_report(r)
    slow_report(s)
    -- nothing of what the handler sent
    assert.is_nil(r.body:find("primes up to", 1, true))
    -- the waits between slices (ngx.sleep) are the worker's time: suspended
    assert.is_true(time_in(s, "[suspended]") > 0)
    -- the query is read properly
    is_report(request(on.base .. "/?%70rofile"))
    slow_report(is_report(request(on.base .. "/slow?a=1&profile&b=2")))
    for _, q in ipairs { "profiler=1", "q=profile", "xprofile" } do
      r = request(on.base .. "/?" .. q)
      assert.matches("<h1>Catalogue</h1>", r.body, q)
    end
    -- HEAD: the report's headers, no body
    r = request(on.base .. "/?profile", "-I")
    assert.are.equal(200, r.status)
    assert.are.equal("text/html; charset=utf-8", r.headers["content-type"])
    assert.is_nil(r.body:find("<!DOCTYPE", 1, true))
    -- and the server goes on serving
    assert.matches("^17984 primes", request(on.base .. "/slow").body)
  end)

  it("with a token and save_dir: only ?profile=TOKEN, answered as usual, the report saved", function ()
    for _, q in ipairs { "profile", "profile=", "profile=wrong", "profile=s3cretx" } do
      local r = request(saving.base .. "/slow?" .. q)
      assert.are.equal(200, r.status)
      assert.matches("^17984 primes", r.body, q)
    end
    assert.are.same({}, files(dir))
    local r = request(saving.base .. "/slow?profile=s3cr%65t")
    assert.are.equal(200, r.status)
    assert.matches("^17984 primes", r.body)
    local list = wait_files(dir, 1)
    assert.are.equal(1, #list, table.concat(list, "\n"))
    assert.matches(NAME .. "GET%-_slow%-%d+%.%d%d%ds%.html$", list[1])
    slow_report(session_of(h.read(dir .. "/" .. list[1])))
  end)
end)

describe("sprof.web on nginx: requests and workers", function ()
  local two, one, saving, dir

  lazy_setup(starting(function ()
    dir = newdir()
    two = handlers(2, { SPROF_WEB = "1" })
    one = handlers(1, { SPROF_WEB = "1" })
    saving = handlers(1, { SPROF_WEB = "1", SPROF_WEB_DIR = dir })
  end))

  lazy_teardown(stop_all)

  -- The worker (its pid) that logged "work NAME started" last.
  local function worker_of (server, name)
    local lines = log_lines(server, "work " .. name .. " started")
    return lines[#lines] and lines[#lines]:match("%] (%d+)#%d+:")
  end

  it("two workers profile a request each at the same time, each report only its own", function ()
    -- the second request goes to the other worker while the first is busy
    -- (nginx's workers compete for connections); should both still land
    -- on one, the second is served unprofiled, and the pair is sent again
    local pair
    for _ = 1, 5 do
      local a = start_request(two.base .. "/work?fn=alpha&profile")
      sleep(0.2)
      local b = start_request(two.base .. "/work?fn=beta&profile")
      local ra, rb = finish(a), finish(b)
      local pa, pb = worker_of(two, "alpha"), worker_of(two, "beta")
      assert.is_truthy(pa and pb, h.read(two.err))
      if pa ~= pb then pair = { ra, rb } break end
    end
    assert.is_truthy(pair, "both requests went to one worker, five times")
    local sa = session_of(pair[1].body)
    local sb = session_of(pair[2].body)
    assert.are.equal(200, pair[1].status)
    assert.are.equal(200, pair[2].status)
    hot(sa, "crunch_alpha")
    hot(sb, "crunch_beta")
    assert.is_false(has_frame(sa, "crunch_beta"))
    assert.is_false(has_frame(sb, "crunch_alpha"))
    -- complete: most of each request's 0.6 s of CPU (a generous bound)
    assert.is_true(time_in(sa, "crunch_alpha") > 0.3e9, "alpha: " .. time_in(sa, "crunch_alpha"))
    assert.is_true(time_in(sb, "crunch_beta") > 0.3e9, "beta: " .. time_in(sb, "crunch_beta"))
  end)

  it("a request that waits (ngx.sleep 0.3 s) shows the wait as [suspended]", function ()
    local s = is_report(request(one.base .. "/nap?profile"))
    hot(s, "crunch_alpha")
    local suspended = time_in(s, "[suspended]") / 1e9
    -- (and the time the machine did not run the worker, on a busy one)
    assert.is_true(suspended > 0.2 and suspended < 3,
                   string.format("[suspended]: %.3f s", suspended))
  end)

  it("one profiled request per worker: another ?profile meanwhile is served as usual, with a line in the log", function ()
    local before = #log_lines(one, "nap sleeps")
    local napping = start_request(one.base .. "/nap?sleep=3&profile")
    for _ = 1, 200 do  -- until it sleeps (up to 10 s)
      if #log_lines(one, "nap sleeps") > before then break end
      sleep(0.05)
    end
    local r = request(one.base .. "/work?fn=beta&profile")
    assert.are.equal(200, r.status)
    assert.are.equal("work beta done\n", r.body)
    local lines = log_lines(one, "sprof.web: not profiled:")
    assert.are.equal(1, #lines, table.concat(lines, "\n"))
    assert.matches("%[warn%].*sprof.web: not profiled: another request is being profiled", lines[1])
    -- the first is profiled to its end, and holds nothing of the second
    local s = is_report(finish(napping))
    hot(s, "crunch_alpha")
    assert.is_false(has_frame(s, "crunch_beta"))
    -- then the worker profiles again
    hot(is_report(request(one.base .. "/work?fn=beta&profile")), "crunch_beta")
  end)

  it("with the wrapper disabled (enabled = false), ?profile is ignored", function ()
    local r = request(one.base .. "/off/work?fn=beta&profile")
    assert.are.equal(200, r.status)
    assert.are.equal("work beta done\n", r.body)
    assert.are.equal("text/plain", r.headers["content-type"])
  end)

  it("a failing handler: report with status 500, the error in the error log", function ()
    local r = request(one.base .. "/boom?profile")
    assert.are.equal(500, r.status)
    assert.are.equal("text/html; charset=utf-8", r.headers["content-type"])
    hot(session_of(r.body), "explode")
    local log = h.read(one.err)
    assert.matches("sprof.web: GET /boom failed: [^\n]*ngx_test_handlers.lua:%d+: the handler failed", log)
    assert.matches("in function 'explode'", log)
    -- without ?profile: nginx's own error handling
    r = request(one.base .. "/boom")
    assert.are.equal(500, r.status)
    assert.matches("500 Internal Server Error", r.body)
    -- and the worker profiles again
    hot(is_report(request(one.base .. "/work?fn=beta&profile")), "crunch_beta")
  end)

  it("a handler that ends with ngx.exit: the report all the same, and the worker profiles again", function ()
    local r = request(one.base .. "/done")
    assert.are.equal(202, r.status)
    assert.are.equal("done early\n", r.body)
    r = request(one.base .. "/done?profile")
    hot(is_report(r), "crunch_beta")
    assert.is_nil(r.body:find("done early", 1, true))
    hot(is_report(request(one.base .. "/work?fn=alpha&profile")), "crunch_alpha")
    assert.are.same({}, log_lines(one, "ngx.exit returned"))
  end)

  it("a handler with its own copies of ngx.say and ngx.exit: its answer, and the worker profiles again", function ()
    local before = #log_lines(one, "sprof.web: not profiled:")
    local r = request(one.base .. "/bypass?profile")
    assert.are.equal(200, r.status)
    assert.are.equal("bypassed\n", r.body)
    -- its run never came back to the wrapper: the next ?profile ends it,
    -- says so, and is profiled
    hot(is_report(request(one.base .. "/work?fn=alpha&profile")), "crunch_alpha")
    assert.are.equal(before, #log_lines(one, "sprof.web: not profiled:"))
    local lines = log_lines(one, "sprof.web: the run of GET /bypass ended without sprof.web")
    assert.are.equal(1, #lines, h.read(one.err))
    -- a copy of ngx.say only: the answer went first, the log says why no report
    r = request(one.base .. "/early?profile")
    assert.are.equal(200, r.status)
    assert.are.equal("answered early\n", r.body)
    lines = log_lines(one, "sprof.web: the report of GET /early cannot be sent")
    assert.are.equal(1, #lines, h.read(one.err))
    hot(is_report(request(one.base .. "/work?fn=alpha&profile")), "crunch_alpha")
  end)

  it("with save_dir: the handler answers, a failing or exiting one too, and each report is saved", function ()
    local r = request(saving.base .. "/done?profile")
    assert.are.equal(202, r.status)
    assert.are.equal("done early\n", r.body)
    r = request(saving.base .. "/boom?profile")
    assert.are.equal(500, r.status)
    assert.matches("runtime error: [^\n]*ngx_test_handlers.lua:%d+: the handler failed", h.read(saving.err))
    local list = wait_files(dir, 2)
    assert.are.equal(2, #list, table.concat(list, "\n"))
    local done, boom
    for _, name in ipairs(list) do
      if name:match(NAME .. "GET%-_done%-%d+%.%d%d%ds%.html$") then done = name end
      if name:match(NAME .. "GET%-_boom%-%d+%.%d%d%ds%-error%.html$") then boom = name end
    end
    assert.is_truthy(done and boom, table.concat(list, "\n"))
    hot(session_of(h.read(dir .. "/" .. done)), "crunch_beta")
    hot(session_of(h.read(dir .. "/" .. boom)), "explode")
    -- the worker profiles again
    r = request(saving.base .. "/work?fn=alpha&profile")
    assert.are.equal("work alpha done\n", r.body)
    assert.are.equal(3, #wait_files(dir, 3))
  end)
end)

describe("sprof.web on nginx, without sprof.so on lua_package_cpath", function ()
  after_each(stop_all)

  it("serves ?profile as usual, and says why in one line of the error log", function ()
    local server = handlers(1, { SPROF_WEB = "1" }, h.tmpfile(".nothing"))
    local r = request(server.base .. "/work?fn=beta&profile")
    assert.are.equal(200, r.status)
    assert.are.equal("work beta done\n", r.body)
    local lines = log_lines(server, "sprof.web")
    assert.are.equal(1, #lines, h.read(server.err))
    assert.matches("sprof.web: not profiled: no sprof.so for LuaJIT on lua_package_cpath", lines[1])
  end)
end)
