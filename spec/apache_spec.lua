-- sprof on a real Apache httpd with mod_lua (Debian's apache2, Lua 5.3):
-- the example app (examples/web/run-apache, apache.conf, apache-app.lua)
-- on 127.0.0.1, on free ports, with curl sending the requests. Two ways:
-- sprof.web in the handler script (?profile), and LD_PRELOAD of
-- libsprof-preload.so into an unmodified Apache. Every server runs under
-- `timeout` and is stopped in the teardowns.
local h = require "spec.helper"
local json = require "dkjson"

local EXAMPLE = h.root .. "/examples/web"
local MODULE = h.build .. "/lua5.3/sprof.so"
local PRELOAD = h.build .. "/libsprof-preload.so"
local MOD_LUA = "/usr/lib/apache2/modules/mod_lua.so"

local function exists (path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local missing
if not (os.execute("command -v apache2 >/dev/null 2>&1") == true or exists("/usr/sbin/apache2"))
   or not exists(MOD_LUA) then
  missing = "Apache with mod_lua is not installed (apt-get install apache2)"
elseif not exists(MODULE) then
  missing = "no Lua 5.3 build: " .. MODULE .. " is missing (apt-get install liblua5.3-dev, then cmake again)"
end
if missing then
  describe("sprof on Apache mod_lua", function () pending(missing) end)
  return
end

-- Started as root, Apache serves as www-data: it must reach the files in
-- the spec's temporary directory, and write where the tests ask it to.
os.execute("chmod o+x " .. h.quote(h.tmpdir))

local newdir = h.shared_dir

---------------------------------------------------------------------------
-- servers

local running = {}  -- started servers not stopped yet

local sleep, alive = h.sleep, h.alive

-- Starts the example on Apache (run-apache PORT ARGS...) in the background
-- with a clean sprof environment plus 'env'; stdout and stderr (Apache's
-- error log) go to files.
local function spawn (port, args, env)
  local pidfile, out, err = h.tmpfile(".pid"), h.tmpfile(".out"), h.tmpfile(".err")
  local vars = { "-u SPROF_WEB", "-u SPROF_WEB_TOKEN", "-u SPROF_WEB_DIR",
                 "-u SPROF_OUTPUT", "-u LUA_PATH", "-u LUA_CPATH",
                 "SPROF_BUILD=" .. h.quote(h.build) }
  for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. h.quote(v) end
  -- timeout: the server ends within 5 minutes whatever happens to us; it
  -- also makes a process group of its own, the one Apache signals as it
  -- stops
  assert(os.execute(string.format(
    "env %s timeout 300 %s %d %s >%s 2>%s </dev/null & echo $! >%s",
    table.concat(vars, " "), h.quote(EXAMPLE .. "/run-apache"), port, args or "",
    h.quote(out), h.quote(err), h.quote(pidfile))))
  local proc = { pid = assert(tonumber(h.read(pidfile))), out = out, err = err }
  running[proc] = true
  return proc
end

-- Stops a server: TERM, then waits until run-apache has seen Apache stop
-- (its reports written); KILL to the process group left after 10 s.
local function stop (proc)
  if not running[proc] then return end
  running[proc] = nil
  os.execute("kill -TERM " .. proc.pid .. " 2>/dev/null")
  for _ = 1, 200 do
    if not alive(proc.pid) then return end
    sleep(0.05)
  end
  os.execute("kill -KILL -- -" .. proc.pid .. " 2>/dev/null")
end

local function stop_all ()
  for proc in pairs(running) do stop(proc) end
end

local CURL = h.CURL

local request = h.request

-- The example on Apache, on a free port, once it answers.
local function apache (args, env)
  for _ = 1, 5 do  -- another program may take the port first
    local port = h.free_port()
    local proc = spawn(port, args, env)
    proc.base = "http://127.0.0.1:" .. port
    if h.wait_ready(proc) then return proc end
    stop(proc)
  end
  error("Apache did not start")
end

-- A setup that starts servers: if one fails to start, those already
-- started are stopped before the error goes on.
local function starting (fn) return h.starting(stop_all, fn) end

---------------------------------------------------------------------------
-- reports

local session_of, is_report = h.session_of, h.is_report
local time_in, has_frame = h.session_time, h.has_frame
local files, wait_files = h.files, h.wait_files

-- The hot function is most of the time Lua ran (not of the time Apache
-- waited for requests, which a whole state's profile also holds).
local function hot (session, name) h.hot(session, name, "(outside Lua)") end

local NAME = "^%d%d%d%d%d%d%d%d%-%d%d%d%d%d%d%-"  -- date-time-

---------------------------------------------------------------------------

describe("sprof.web.apache", function ()
  package.path = h.root .. "/runtime/?.lua;" .. package.path
  local web = require "sprof.web"

  it("hands a request without ?profile to the handler untouched, and checks its options", function ()
    local r = { args = "a=1&profiler=2", method = "GET", uri = "/" }
    local got
    local status = web.apache(r, function (req) got = req return 404 end, { enabled = true })
    assert.are.equal(404, status)
    assert.are.equal(r, got)
    local ok, err = pcall(web.apache, r, print, { save = "/tmp" })
    assert.is_false(ok)
    assert.matches("sprof.web: unknown option 'save'", err)
  end)
end)

describe("sprof.web on Apache mod_lua", function ()
  local off, on, once, saving, dir

  lazy_setup(starting(function ()
    dir = newdir()
    off = apache()
    on = apache(nil, { SPROF_WEB = "1" })
    -- mod_lua's default scope: a new Lua state for each request
    once = apache("-c 'LuaScope once'", { SPROF_WEB = "1" })
    saving = apache(nil, { SPROF_WEB = "1", SPROF_WEB_TOKEN = "s3cret", SPROF_WEB_DIR = dir })
  end))

  lazy_teardown(stop_all)

  it("answers as usual without ?profile", function ()
    for _, server in ipairs { off, on, saving } do
      local r = request(server.base .. "/")
      assert.are.equal(200, r.status)
      assert.are.equal("text/html; charset=utf-8", r.headers["content-type"])
      assert.matches("<h1>Catalogue</h1>", r.body)
      r = request(server.base .. "/api/items?n=2")
      assert.are.equal("application/json", r.headers["content-type"])
      assert.matches('^{"count":2,"items":%[{', r.body)
      r = request(server.base .. "/nothing")
      assert.are.equal(404, r.status)
      assert.are.equal("not found\n", r.body)
    end
  end)

  it("is off unless enabled: ?profile is an ordinary argument then", function ()
    local r = request(off.base .. "/?profile")
    assert.are.equal(200, r.status)
    assert.matches("<h1>Catalogue</h1>", r.body)
  end)

  it("answers ?profile with the report of the request, its hot function first", function ()
    local r = request(on.base .. "/slow?profile")
    local s = is_report(r)
    hot(s, "crunch")
    assert.are.equal("GET /slow", s.program)
    assert.are.equal("no-store", r.headers["cache-control"])
    -- nothing of what the handler wrote: its text/plain answer is not there
    assert.is_nil(r.body:find("primes up to", 1, true))
    -- the native frames, named: mod_lua's path from Apache to the handler
    assert.is_true(has_frame(s, "ap_run_handler"), "no ap_run_handler in the report")
    -- the query is read properly
    is_report(request(on.base .. "/?%70rofile"))
    hot(is_report(request(on.base .. "/slow?a=1&profile&b=2")), "crunch")
    for _, q in ipairs { "profiler=1", "q=profile", "xprofile" } do
      r = request(on.base .. "/?" .. q)
      assert.matches("<h1>Catalogue</h1>", r.body, q)
    end
    -- HEAD: the report's headers, no body
    r = request(on.base .. "/?profile", "-I")
    assert.are.equal(200, r.status)
    assert.are.equal("text/html; charset=utf-8", r.headers["content-type"])
    assert.is_nil(r.body:find("<!DOCTYPE", 1, true))
  end)

  it("with LuaScope once (a Lua state per request) too", function ()
    for _ = 1, 3 do
      local s = is_report(request(once.base .. "/slow?profile"))
      hot(s, "crunch")
    end
    assert.matches("<h1>Catalogue</h1>", request(once.base .. "/").body)
  end)

  it("a failing request: report with status 500, the error in the error log", function ()
    local r = request(on.base .. "/boom?profile")
    assert.are.equal(500, r.status)
    assert.are.equal("text/html; charset=utf-8", r.headers["content-type"])
    hot(session_of(r.body), "load_inventory")
    local log = h.read(on.err)
    assert.matches("sprof.web: GET /boom failed: [^\n]*app.lua:%d+: inventory service unavailable", log)
    assert.matches("in upvalue 'load_inventory'", log)
    -- without ?profile: mod_lua's own error handling
    r = request(on.base .. "/boom")
    assert.are.equal(500, r.status)
    assert.matches("Internal Server Error", r.body)
  end)

  it("with a token and save_dir: only ?profile=TOKEN, answered as usual, the report saved", function ()
    for _, q in ipairs { "profile", "profile=", "profile=wrong", "profile=s3cretx" } do
      local r = request(saving.base .. "/api/items?n=2&" .. q)
      assert.are.equal(200, r.status)
      assert.matches('^{"count":2', r.body, q)
    end
    assert.are.same({}, files(dir))
    local r = request(saving.base .. "/slow?profile=s3cr%65t")
    assert.are.equal(200, r.status)
    assert.matches("primes up to", r.body)
    -- a failing one: mod_lua answers 500 as usual, its report is saved too
    r = request(saving.base .. "/boom?profile=s3cret")
    assert.are.equal(500, r.status)
    assert.matches("Lua error: [^\n]*app.lua:%d+: inventory service unavailable", h.read(saving.err))
    local list = wait_files(dir, 2)
    assert.are.equal(2, #list, table.concat(list, "\n"))
    local slow, boom
    for _, name in ipairs(list) do
      if name:match(NAME .. "GET%-_slow%-%d+%.%d%d%ds%.html$") then slow = name end
      if name:match(NAME .. "GET%-_boom%-%d+%.%d%d%ds%-error%.html$") then boom = name end
    end
    assert.is_truthy(slow and boom, table.concat(list, "\n"))
    hot(session_of(h.read(dir .. "/" .. slow)), "crunch")
    hot(session_of(h.read(dir .. "/" .. boom)), "load_inventory")
  end)
end)

describe("sprof.web on Apache mod_lua, with the wrong sprof.so", function ()
  after_each(stop_all)

  it("serves ?profile as usual, and says why in one line of the error log", function ()
    -- a build whose lua5.3/sprof.so is the one built for Lua 5.4
    local fake = h.tmpfile(".build")
    assert(os.execute(string.format("mkdir -p %s/lua5.3 && ln -s %s %s/lua5.3/sprof.so",
      h.quote(fake), h.quote(h.build .. "/sprof.so"), h.quote(fake))))
    local server = apache(nil, { SPROF_WEB = "1", SPROF_BUILD = fake })
    local r = request(server.base .. "/api/items?n=2&profile")
    assert.are.equal(200, r.status)
    assert.matches('^{"count":2', r.body)
    local lines = {}
    -- mod_lua's lines (r:err's among them)
    for line in (h.read(server.err) or ""):gmatch("[^\n]*%[lua:[^\n]*") do lines[#lines + 1] = line end
    assert.are.equal(1, #lines, table.concat(lines, "\n"))
    assert.matches("sprof.web: not profiled: sprof: this sprof.so is built for Lua 5.4, "
                   .. "and this program runs Lua 5.3", lines[1])
  end)
end)

describe("LD_PRELOAD=libsprof-preload.so into Apache", function ()
  after_each(stop_all)

  -- The reports (JSON sessions) in 'dir', by name.
  local function sessions (dir)
    local list = {}
    for _, name in ipairs(files(dir)) do
      list[name] = assert(json.decode(assert(h.read(dir .. "/" .. name))), name)
    end
    return list
  end

  local function preloaded (dir, output)
    local preload = os.getenv("LD_PRELOAD")  -- a sanitizer's runtime stays first
    return { LD_PRELOAD = (preload and preload ~= "" and preload .. " " or "") .. PRELOAD,
             SPROF_OUTPUT = dir .. "/" .. output }
  end

  it("one process (-X): the state's report, written as Apache stops, names the handler's hot function", function ()
    local dir = newdir()
    local server = apache("-X", preloaded(dir, "apache.json"))
    for _ = 1, 2 do assert.are.equal(200, request(server.base .. "/slow").status) end
    stop(server)
    local list = sessions(dir)
    local s = list["apache.json"]
    assert.is_truthy(s, "no report: " .. table.concat(files(dir), " ") .. "\n" .. (h.read(server.err) or ""))
    hot(s, "crunch")
    assert.is_true(has_frame(s, "ap_run_handler"), "no ap_run_handler in the report")
  end)

  it("with LuaScope once: a report per request, written as its state closes", function ()
    local dir = newdir()
    local server = apache("-X -c 'LuaScope once'", preloaded(dir, "request.json"))
    assert.are.equal(200, request(server.base .. "/slow").status)
    assert.are.equal(200, request(server.base .. "/api/items?n=2").status)
    -- before Apache stops (once the request's memory pool goes, which may
    -- be just after the response); the first is the start-up check's
    assert.are.same({ "request.2.json", "request.3.json", "request.json" }, wait_files(dir, 3))
    stop(server)  -- (the last one written whole)
    local list = sessions(dir)
    hot(list["request.2.json"], "crunch")
    assert.is_false(has_frame(list["request.3.json"], "crunch"))
  end)

  it("forked children: each child writes the reports of its own states (%p)", function ()
    local dir = newdir()
    local server = apache("", preloaded(dir, "apache-%p.json"))
    -- the time of one /slow, the fastest of 3 (another job may slow one down)
    local once = math.huge
    for _ = 1, 3 do
      local r = h.run(CURL .. " -o /dev/null -w '%{time_total}' " .. h.quote(server.base .. "/slow"))
      once = math.min(once, tonumber(r.out) or math.huge)
    end
    -- four at once: prefork gives them to different children
    local args = {}
    for i = 1, 4 do args[#args + 1] = "-o /dev/null " .. h.quote(server.base .. "/slow?i=" .. i) end
    local r = h.run(CURL .. " -Z --parallel-immediate -w '%{http_code}\\n' " .. table.concat(args, " "))
    assert.are.equal("200\n200\n200\n200\n", r.out)
    stop(server)
    local list, pids, crunch = sessions(dir), 0, 0
    for name, s in pairs(list) do
      assert.matches("^apache%-%d+[%.%d]*%.json$", name)
      pids = pids + 1
      crunch = crunch + time_in(s, "crunch")
    end
    assert.is_true(pids >= 2, "reports: " .. table.concat(files(dir), " ") .. "\n" .. (h.read(server.err) or ""))
    -- none of the children overwrote another's report: the seven requests'
    -- crunching is in them (half of their time at least: a generous bound)
    assert.is_true(crunch / 1e9 > 7 * once / 2,
                   string.format("crunch: %.3f s in the reports, one request: %.3f s", crunch / 1e9, once))
  end)
end)
